"""
`model.tar.gz` is whole or absent: `atomic_archive_model` writes it through a temporary name, the
`ner_atomic_archive` callback makes `allennlp train` archive that way for its run only, and
importing `ner_elmo` leaves allennlp exactly as allennlp defines it.
"""
import json
import subprocess
import sys
import tarfile

import pytest
import torch
from allennlp.commands import train as train_command
from allennlp.commands.train import train_model
from allennlp.common import Params
from allennlp.models import archival
from allennlp.models.archival import load_archive
from allennlp.training.callbacks.callback import TrainerCallback

from ner_elmo.training.callbacks.ner_atomic_archive import atomic_archive_model
from tiny_corpus import TINY_SENTENCES, tiny_config, write_conll


def _serialization_dir(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "best.th")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "vocabulary").mkdir()
    (tmp_path / "vocabulary" / "labels.txt").write_text("O\n")
    return tmp_path


def _kill_while_archiving(monkeypatch):
    """`tarfile` that dies after the archive's first member, as a kill while archiving would."""
    real_add = tarfile.TarFile.add

    def add_then_die(self, name, *args, **kwargs):
        real_add(self, name, *args, **kwargs)
        raise KeyboardInterrupt("killed while archiving")

    monkeypatch.setattr(tarfile.TarFile, "add", add_then_die)


def test_archive_is_complete(tmp_path):
    path = atomic_archive_model(_serialization_dir(tmp_path))
    with tarfile.open(path) as archive:
        assert {"config.json", "weights.th", "vocabulary/labels.txt"} <= set(archive.getnames())
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []


def test_failure_while_archiving_leaves_no_archive(tmp_path, monkeypatch):
    serialization_dir = _serialization_dir(tmp_path)
    (serialization_dir / "model.tar.gz").write_bytes(b"finished archive from an earlier run")
    _kill_while_archiving(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        atomic_archive_model(serialization_dir)
    # The earlier archive is untouched and no partial file is left behind.
    assert (serialization_dir / "model.tar.gz").read_bytes() == b"finished archive from an earlier run"
    assert not [p for p in serialization_dir.iterdir() if "partial" in p.name]
    assert archival.archive_model is not atomic_archive_model  # allennlp's own function is unchanged


# --- allennlp train with and without the callback ---------------------------------------------


@TrainerCallback.register("test_raise_in_second_epoch")
class RaiseInSecondEpoch(TrainerCallback):
    """Raises `KeyboardInterrupt` or `RuntimeError` at the end of epoch 1 (the second)."""

    def __init__(self, serialization_dir: str, exception: str) -> None:
        super().__init__(serialization_dir)
        self.exception = {"KeyboardInterrupt": KeyboardInterrupt, "RuntimeError": RuntimeError}[exception]

    def on_epoch(self, trainer, metrics, epoch, is_primary=True, **kwargs) -> None:
        if epoch == 1:
            raise self.exception("simulated stop in the second epoch")


def _params(tmp_path, callbacks, num_epochs=1) -> Params:
    train = write_conll(tmp_path / "train.txt", TINY_SENTENCES)
    config = tiny_config(train, train)
    config["trainer"].update(num_epochs=num_epochs, callbacks=callbacks)
    return Params(json.loads(json.dumps(config)))


def _members(path):
    try:
        with tarfile.open(path) as archive:
            return set(archive.getnames())
    except (tarfile.TarError, EOFError, OSError):
        return set()


@pytest.mark.parametrize("with_callback", [True, False])
def test_a_kill_while_allennlp_train_archives(tmp_path, monkeypatch, with_callback):
    callbacks = [{"type": "ner_atomic_archive"}] if with_callback else []
    params = _params(tmp_path, callbacks)
    run = tmp_path / "run"
    _kill_while_archiving(monkeypatch)
    with pytest.raises(KeyboardInterrupt, match="killed while archiving"):
        train_model(params, run)
    assert train_command.archive_model is archival.archive_model
    assert not [p for p in run.iterdir() if "partial" in p.name]
    if with_callback:
        assert not (run / "model.tar.gz").exists()
    else:
        # allennlp alone: an archive without weights where a finished one is expected.
        assert (run / "model.tar.gz").exists() and "weights.th" not in _members(run / "model.tar.gz")


def test_a_finished_run_has_a_loadable_archive_and_allennlp_its_function(tmp_path):
    model = train_model(_params(tmp_path, [{"type": "ner_atomic_archive"}]), tmp_path / "run")
    assert train_command.archive_model is archival.archive_model
    loaded = load_archive(str(tmp_path / "run" / "model.tar.gz")).model
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    assert not [p for p in (tmp_path / "run").iterdir() if "partial" in p.name]


@pytest.mark.parametrize("exception, archived", [("KeyboardInterrupt", True), ("RuntimeError", False)])
def test_a_stopped_run_archives_as_allennlp_decides_and_puts_its_function_back(tmp_path, exception, archived):
    # allennlp archives the best weights of an interrupted run, and nothing after an error.
    callbacks = [{"type": "ner_atomic_archive"}, {"type": "test_raise_in_second_epoch", "exception": exception}]
    run = tmp_path / "run"
    with pytest.raises((KeyboardInterrupt, RuntimeError), match="simulated stop"):
        train_model(_params(tmp_path, callbacks, num_epochs=3), run)
    assert train_command.archive_model is archival.archive_model
    assert (run / "model.tar.gz").exists() == archived
    if archived:
        assert {"config.json", "weights.th"} <= _members(run / "model.tar.gz")
        load_archive(str(run / "model.tar.gz"))


# Every attribute of every allennlp module loaded before `import ner_elmo` (allennlp's commands,
# archival, training and allennlp-models' taggers, which the plugin builds on) is the same object
# after it; new attributes may only be submodules that the import loaded.
_IMPORT_CHECK = """
import json, sys, types
import allennlp.commands, allennlp.models.archival, allennlp.training, allennlp_models.tagging
original_archive_model = allennlp.commands.train.archive_model
before = {name: dict(vars(module)) for name, module in list(sys.modules.items())
          if module is not None and name.split(".")[0] in ("allennlp", "allennlp_models")}
import ner_elmo
changed = []
for name, attributes in before.items():
    now = vars(sys.modules[name])
    changed += [f"{name}.{key}" for key, value in attributes.items() if now.get(key, changed) is not value]
    changed += [f"{name}.{key} (added)" for key in now.keys() - attributes.keys()
                if not isinstance(now[key], types.ModuleType)]
print(json.dumps({
    "modules": len(before),
    "changed": changed,
    "archive_model": allennlp.commands.train.archive_model is original_archive_model
    and original_archive_model is allennlp.models.archival.archive_model,
}))
"""


@pytest.mark.slow
def test_importing_ner_elmo_changes_nothing_in_allennlp():
    completed = subprocess.run(
        [sys.executable, "-c", _IMPORT_CHECK], capture_output=True, text=True, timeout=300, check=True
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["modules"] > 100  # allennlp's training and commands were loaded and compared
    assert result["changed"] == []
    assert result["archive_model"] is True
