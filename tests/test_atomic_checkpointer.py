"""
`ner_atomic` checkpoints are whole or absent: a run that dies while writing one resumes with
`recover=True` from the one before and ends as the uninterrupted run does; allennlp's default
checkpointer leaves a truncated newest checkpoint that `--recover` cannot load. On a full disk,
`ner_atomic` leaves no checkpoint file and the `ner_gradient_descent` trainer the previous
`best.th`; allennlp's leave truncated files.
"""
import json
import pickle
from pathlib import Path

import pytest
import torch
from allennlp.commands.train import TrainModel, train_model
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.training.callbacks.callback import TrainerCallback

from full_disk import fill_the_disk, hit_the_limit, temporaries, write_on_a_full_disk
from ner_elmo.common.atomic_write import atomic_torch_save
from ner_elmo.training.ner_atomic import NerAtomicCheckpointer
from tiny_corpus import TINY_SENTENCES, tiny_config, write_conll


class DyingOnSave:
    """`torch.save` that writes half a file and raises when it writes epoch 2's model state
    (what a kill in the middle of `torch.save` leaves behind); the first time only."""

    def __init__(self):
        self.died = False
        self.save = torch.save

    def __call__(self, obj, path, *args, **kwargs):
        if not self.died and "model_state_e2_b0" in str(path):
            self.died = True
            Path(path).write_bytes(b"PK\x03\x04 truncated")
            raise RuntimeError("simulated kill while writing a checkpoint")
        return self.save(obj, path, *args, **kwargs)


def _params(tmp_path: Path, checkpointer: dict, **trainer) -> Params:
    train = write_conll(tmp_path / "train.txt", TINY_SENTENCES)
    dev = write_conll(tmp_path / "dev.txt", TINY_SENTENCES[:4])
    config = tiny_config(train, dev)
    config["model"]["dropout"] = 0.5
    config["data_loader"] = {"batch_size": 2, "shuffle": True}
    config["trainer"].update(num_epochs=4, checkpointer=checkpointer, callbacks=[{"type": "rng_state"}])
    config["trainer"].update(trainer)
    return Params(json.loads(json.dumps(config)))


def _die_while_checkpointing(tmp_path, monkeypatch, checkpointer):
    monkeypatch.setattr(torch, "save", DyingOnSave())
    run = tmp_path / "killed"
    with pytest.raises(RuntimeError, match="simulated kill while writing a checkpoint"):
        train_model(_params(tmp_path, checkpointer), run)
    monkeypatch.undo()
    return run


def test_a_kill_while_checkpointing_resumes_from_the_checkpoint_before(tmp_path, monkeypatch):
    checkpointer = {"type": "ner_atomic", "keep_most_recent_by_count": 10}
    whole = train_model(_params(tmp_path, checkpointer), tmp_path / "whole")
    run = _die_while_checkpointing(tmp_path, monkeypatch, checkpointer)
    assert not (run / "model_state_e2_b0.th").exists()
    assert (run / "model_state_e1_b0.th").exists() and (run / "training_state_e1_b0.th").exists()
    assert not list(run.glob("*.partial-*"))
    resumed = train_model(_params(tmp_path, checkpointer), run, recover=True)
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), whole.state_dict().values()))
    metrics = json.loads((run / "metrics.json").read_text())
    expected = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert metrics["validation_loss"] == expected["validation_loss"]
    assert sorted(p.name for p in run.glob("model_state_*")) == [f"model_state_e{e}_b0.th" for e in (1, 2, 3, 4)]


def test_allennlps_default_checkpointer_leaves_a_checkpoint_recover_cannot_load(tmp_path, monkeypatch):
    # The case above fails without ner_atomic.
    run = _die_while_checkpointing(tmp_path, monkeypatch, {"keep_most_recent_by_count": 10})
    assert (run / "model_state_e2_b0.th").exists()
    with pytest.raises(ConfigurationError, match="Could not recover training from the checkpoint"):
        train_model(_params(tmp_path, {"keep_most_recent_by_count": 10}), run, recover=True)


@TrainerCallback.register("test_full_disk_after_epoch")
class FullDiskAfterEpoch(TrainerCallback):
    """From `on_epoch` of `epoch` (before that epoch's checkpoint and `best.th`), no file can
    grow past `limit` bytes: a full disk. Only in a child (`full_disk.write_on_a_full_disk`)."""

    def __init__(self, serialization_dir: str, epoch: int, limit: int) -> None:
        super().__init__(serialization_dir)
        self.epoch = epoch
        self.limit = limit

    def on_epoch(self, trainer, metrics, epoch, is_primary=True, **kwargs) -> None:
        if epoch == self.epoch:
            fill_the_disk(self.limit)


def _train_on_a_full_disk(tmp_path, trainer_type: str, checkpointer: dict):
    """An epoch with the configs' moving average, in a child whose disk fills at its end, in a
    run directory that holds an earlier `best.th`: (the run, that file's bytes, the outcome)."""
    run = tmp_path / "run"
    run.mkdir()
    atomic_torch_save({"earlier": torch.zeros(4)}, run / "best.th")
    params = _params(
        tmp_path,
        checkpointer,
        type=trainer_type,
        num_epochs=1,
        moving_average={"type": "ner_exponential", "decay": 0.999},
        callbacks=[{"type": "test_full_disk_after_epoch", "epoch": 0, "limit": 64}],
    )
    earlier = (run / "best.th").read_bytes()
    outcome = write_on_a_full_disk(
        lambda: TrainModel.from_params(params=params, serialization_dir=str(run), local_rank=0).run(), limit=None
    )
    return run, earlier, outcome


@pytest.mark.usefixtures("one_torch_thread")  # the child trains
@pytest.mark.parametrize("atomic", [True, False], ids=["ner_gradient_descent", "gradient_descent"])
def test_a_full_disk_while_writing_best_th_leaves_the_earlier_one(tmp_path, atomic):
    # No checkpoint: best.th is the epoch's first file.
    trainer_type = "ner_gradient_descent" if atomic else "gradient_descent"
    run, earlier, outcome = _train_on_a_full_disk(tmp_path, trainer_type, {"save_completed_epochs": False})
    assert hit_the_limit(outcome), outcome
    # allennlp's trainer leaves a truncated best.th (this test fails with it).
    assert ((run / "best.th").read_bytes() == earlier) == atomic
    assert not temporaries(run)


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("atomic", [True, False], ids=["ner_atomic", "allennlp's checkpointer"])
def test_a_full_disk_while_checkpointing_leaves_no_checkpoint(tmp_path, atomic):
    checkpointer = {"type": "ner_atomic"} if atomic else {}
    run, earlier, outcome = _train_on_a_full_disk(tmp_path, "ner_gradient_descent", checkpointer)
    assert hit_the_limit(outcome), outcome
    # allennlp's checkpointer leaves a truncated model state, the newest checkpoint --recover finds.
    assert (not list(run.glob("*_state_*"))) == atomic
    assert (run / "best.th").read_bytes() == earlier  # not reached
    assert not temporaries(run)


def test_recover_reads_checkpoints_as_data_only(tmp_path):
    from test_safe_archive import Payload

    marker = tmp_path / "marker"
    checkpointer = NerAtomicCheckpointer(serialization_dir=str(tmp_path))
    torch.save({"weight": torch.zeros(2)}, checkpointer._training_state_path(1, 0))
    torch.save({"weight": torch.zeros(2), "payload": Payload(f"touch {marker}")}, checkpointer._model_state_path(1, 0))
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        checkpointer.load_checkpoint()
    assert not marker.exists()
    torch.save({"weight": torch.ones(2)}, checkpointer._model_state_path(1, 0))
    assert torch.equal(checkpointer.load_checkpoint().model_state["weight"], torch.ones(2))
