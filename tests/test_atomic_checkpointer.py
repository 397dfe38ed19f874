"""
`ner_atomic` checkpoints are whole or absent: a run that dies while writing one resumes with
`recover=True` from the one before and ends as the uninterrupted run does; allennlp's default
checkpointer leaves a truncated newest checkpoint that `--recover` cannot load.
"""
import json
from pathlib import Path

import pytest
import torch
from allennlp.commands.train import train_model
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError

from tiny_corpus import TINY_SENTENCES, tiny_config, write_conll


class TorchDyingOnSave:
    """`torch` whose `save` writes half a file and raises when it writes epoch 2's model state
    (what a kill in the middle of `torch.save` leaves behind); the first time only."""

    def __init__(self):
        self.died = False

    def __getattr__(self, name):
        return getattr(torch, name)

    def save(self, obj, path, *args, **kwargs):
        if not self.died and "model_state_e2_b0" in str(path):
            self.died = True
            Path(path).write_bytes(b"PK\x03\x04 truncated")
            raise RuntimeError("simulated kill while writing a checkpoint")
        return torch.save(obj, path, *args, **kwargs)


def _params(tmp_path: Path, checkpointer: dict) -> Params:
    train = write_conll(tmp_path / "train.txt", TINY_SENTENCES)
    dev = write_conll(tmp_path / "dev.txt", TINY_SENTENCES[:4])
    config = tiny_config(train, dev)
    config["model"]["dropout"] = 0.5
    config["data_loader"] = {"batch_size": 2, "shuffle": True}
    config["trainer"].update(num_epochs=4, checkpointer=checkpointer, callbacks=[{"type": "rng_state"}])
    return Params(json.loads(json.dumps(config)))


def _die_while_checkpointing(tmp_path, monkeypatch, module, checkpointer):
    dying = TorchDyingOnSave()
    monkeypatch.setattr(module, "torch", dying)
    run = tmp_path / "killed"
    with pytest.raises(RuntimeError, match="simulated kill while writing a checkpoint"):
        train_model(_params(tmp_path, checkpointer), run)
    monkeypatch.undo()
    return run


def test_a_kill_while_checkpointing_resumes_from_the_checkpoint_before(tmp_path, monkeypatch):
    from ner_elmo.training import atomic_checkpointer

    checkpointer = {"type": "ner_atomic", "keep_most_recent_by_count": 10}
    whole = train_model(_params(tmp_path, checkpointer), tmp_path / "whole")
    run = _die_while_checkpointing(tmp_path, monkeypatch, atomic_checkpointer, checkpointer)
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
    from allennlp.training import checkpointer as stock_checkpointer

    run = _die_while_checkpointing(tmp_path, monkeypatch, stock_checkpointer, {"keep_most_recent_by_count": 10})
    assert (run / "model_state_e2_b0.th").exists()
    with pytest.raises(ConfigurationError, match="Could not recover training from the checkpoint"):
        train_model(_params(tmp_path, {"keep_most_recent_by_count": 10}), run, recover=True)
