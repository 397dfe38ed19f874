"""
What importing the package does, however the process started (issue: "an import that does
what it says"): a script, `python -m`, and a notebook cell import `ner_elmo` and its torch-only
parts without allennlp and without setting any environment variable; the allennlp plugin path
(`.allennlp_plugins`) registers every component and supplies the configs' defaults.
"""
import json
import os
import subprocess
import sys

import pytest

_REPORT = """
import json, os, sys
heavy = ("allennlp", "allennlp_models", "transformers", "torchvision", "spacy")
print(json.dumps({"imported": sorted(m for m in heavy if m in sys.modules),
                  "environment": sorted(k for k in os.environ if k.startswith("NER_ELMO_"))}))
"""


def _clean_environment():
    return {key: value for key, value in os.environ.items() if not key.startswith("NER_ELMO_")}


def _run(arguments, cwd=None):
    completed = subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, timeout=300, env=_clean_environment(), cwd=cwd
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


@pytest.mark.slow
def test_a_script_imports_the_package_and_the_pretrainer_without_allennlp_or_settings(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import ner_elmo\nimport ner_elmo.pretraining.model\nimport ner_elmo.runtime.load\n" + _REPORT)
    report = json.loads(_run([str(script)]).stdout.strip().splitlines()[-1])
    assert report == {"imported": [], "environment": []}


@pytest.mark.slow
def test_python_m_runs_the_pretrainer_without_importing_allennlp():
    completed = _run(["-X", "importtime", "-m", "ner_elmo.pretraining", "--help"])
    assert "usage: python -m ner_elmo.pretraining" in completed.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines() if "|" in line}
    assert "ner_elmo.pretraining" in imported
    assert not {name for name in imported if name.split(".")[0] in ("allennlp", "allennlp_models", "spacy")}


@pytest.mark.slow
def test_a_notebook_cell_imports_the_package_without_side_effects():
    # A notebook runs cells through an interactive interpreter in `__main__`.
    cell = "import ner_elmo\nfrom ner_elmo import load, Entity\n"
    code = (
        "import code\n"
        f"code.InteractiveInterpreter(locals={{'__name__': '__main__'}}).runcode(compile({cell!r}, '<cell>', 'exec'))\n"
        + _REPORT
    )
    report = json.loads(_run(["-c", code]).stdout.strip().splitlines()[-1])
    assert report == {"imported": [], "environment": []}


@pytest.mark.slow
def test_the_allennlp_plugin_path_registers_every_component_and_the_configs_defaults(tmp_path):
    (tmp_path / ".allennlp_plugins").write_text("ner_elmo\n")
    code = """
import json, os
from allennlp.common.plugins import import_plugins
from allennlp.data import DatasetReader
from allennlp.models import Model
from allennlp.modules.token_embedders import TokenEmbedder
from allennlp.commands.subcommand import Subcommand
import_plugins()
print(json.dumps({
    "readers": [name in DatasetReader.list_available() for name in ("ner_conll", "ner_gmb_csv")],
    "embedder": "ner_elmo" in TokenEmbedder.list_available(),
    "model": "ner_crf_tagger" in Model.list_available(),
    "commands": [name in Subcommand.list_available() for name in ("ner-export", "ner-predict", "ner-serve")],
    "defaults": {name: os.environ.get(name) for name in ("NER_ELMO_ELMO_IMPL", "NER_ELMO_ELMO_CACHE")},
}))
"""
    report = json.loads(_run(["-c", code], cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert report == {
        "readers": [True, True],
        "embedder": True,
        "model": True,
        "commands": [True, True, True],
        "defaults": {"NER_ELMO_ELMO_IMPL": "fast", "NER_ELMO_ELMO_CACHE": "memory"},
    }
