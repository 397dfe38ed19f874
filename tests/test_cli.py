"""
The plugin as another AllenNLP project uses it: `allennlp train` and `allennlp predict` run from a
directory that holds nothing but a `.allennlp_plugins` file naming `ner_elmo`. Each `allennlp`
process pays allennlp's import time, so this file keeps to the few runs that matter.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config_env import CONFIGS, FIXTURE_ENV

pytestmark = pytest.mark.slow
ALLENNLP = str(Path(sys.executable).with_name("allennlp"))


def _run(args, cwd, env):
    completed = subprocess.run([ALLENNLP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed


def test_train_and_predict_from_a_project_that_lists_the_plugin(tmp_path):
    project = tmp_path / "other_project"
    project.mkdir()
    (project / ".allennlp_plugins").write_text("ner_elmo\n")
    env = {**os.environ, **FIXTURE_ENV}
    overrides = json.dumps({"trainer.num_epochs": 1, "data_loader.batch_sampler.batch_size": 8})
    _run(["train", str(CONFIGS / "conll2003_elmo.jsonnet"), "-s", "run", "-o", overrides], project, env)
    archive = project / "run" / "model.tar.gz"
    assert archive.is_file()
    metrics = json.loads((project / "run" / "metrics.json").read_text())
    assert "test_f1-measure-overall" in metrics and "test_conlleval-f1-overall" in metrics

    text = "Anna Berg visited Paris.\r\nThen she flew to Lima!"
    lines = [
        json.dumps({"text": text}),
        "this line is not json",
        json.dumps({"tokens": ["John", "Smith", "lives", "in", "Rome", "."]}),
    ]
    (project / "input.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _run(["predict", "run/model.tar.gz", "input.jsonl", "--output-file", "out.jsonl", "--silent"], project, env)
    outputs = [json.loads(line) for line in (project / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(outputs) == 3
    assert outputs[0]["text"] == text and "error" in outputs[1]
    assert outputs[2]["tokens"] == ["John", "Smith", "lives", "in", "Rome", "."]
    for output in (outputs[0], outputs[2]):
        assert len(output["tags"]) == len(output["tokens"])
        for entity in output["entities"]:
            assert output["text"][entity["start"] : entity["end"]] == entity["text"]
    assert [(s["start"], s["end"]) for s in outputs[0]["sentences"]] == [(0, 24), (26, 48)]
