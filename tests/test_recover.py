"""
A training run killed with SIGKILL and resumed with `allennlp train --recover` ends with the
metrics of a run that was never interrupted (same seed, same data, CPU) as the reliability table
of docs/reliability.md promises for each ELMo cache mode, and never leaves a partial `model.tar.gz`.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config_env import CONFIGS, FIXTURE_ENV

pytestmark = pytest.mark.slow
ALLENNLP = str(Path(sys.executable).with_name("allennlp"))
CONFIG = str(CONFIGS / "conll2003_elmo.jsonnet")
OVERRIDES = json.dumps({"trainer.num_epochs": 6, "trainer.patience": None, "data_loader.batch_sampler.batch_size": 2})


# What `--recover` promises, by ELMo activation cache (docs/reliability.md: its table and
# "Exact `--recover`"):
# - "disk": the resumed run reads back the activations the first run wrote, so its metrics are the
#   uninterrupted run's to the bit, on any CPU;
# - "none" and "memory": the resumed process computes ELMo again in other batches than the first
#   run did (the character-CNN outputs with "none", whole sentences with "memory"); the numbers
#   agree up to round-off (`BATCH_TOLERANCE`), which training carries into the final metrics
#   within RECOVER_RTOL (measured under forced AVX2 kernels: training loss 5.2e-9 relative,
#   the rest identical).
RECOVER_RTOL = 1e-6


@pytest.fixture(params=["none", "disk", "memory"])
def env(request, tmp_path):
    cache_dir = str(tmp_path / "activations")
    return {**os.environ, **FIXTURE_ENV, "NER_ELMO_ELMO_CACHE": request.param, "NER_ELMO_ELMO_CACHE_DIR": cache_dir}


def _train(env, serialization_dir: Path, *extra):
    command = [ALLENNLP, "train", CONFIG, "-s", str(serialization_dir), "-o", OVERRIDES, *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(process):
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-4000:]


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, env):
    uninterrupted = tmp_path / "uninterrupted"
    _finish(_train(env, uninterrupted))

    killed = tmp_path / "killed"
    process = _train(env, killed)
    deadline = time.time() + 300
    # The configs' ner_atomic checkpointer renames the model state into place last: once it is
    # there, the checkpoint is whole. Kill at once: with the cache warm, the epochs left take
    # well under a second on the fixtures.
    while not (killed / "model_state_e2_b0.th").exists():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline, "no checkpoint after 300 s"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert not (killed / "model.tar.gz").exists(), "the run finished before the kill: nothing tested"

    _finish(_train(env, killed, "--recover"))
    expected = json.loads((uninterrupted / "metrics.json").read_text())
    resumed = json.loads((killed / "metrics.json").read_text())
    assert (killed / "model.tar.gz").is_file()
    assert not list(killed.glob("*.partial-*"))
    assert resumed["epoch"] == expected["epoch"] and set(resumed) == set(expected)
    keys = ("best_epoch", "best_validation_f1-measure-overall", "test_f1-measure-overall",
            "test_conlleval-f1-overall", "validation_loss", "training_loss", "best_validation_loss")
    if env["NER_ELMO_ELMO_CACHE"] == "disk":
        assert {key: resumed[key] for key in keys} == {key: expected[key] for key in keys}
    else:
        assert resumed["best_epoch"] == expected["best_epoch"]
        for key in keys[1:]:
            assert resumed[key] == pytest.approx(expected[key], rel=RECOVER_RTOL, abs=1e-12), key
