import json
from pathlib import Path

import pytest
import torch
from allennlp.common import Params
from allennlp.training.callbacks import TrainerCallback
from allennlp.training.learning_rate_schedulers import LearningRateScheduler

from tiny_corpus import TINY_SENTENCES, tiny_config, write_conll


def _scheduler(po: float, lr: float = 0.01):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = LearningRateScheduler.from_params(
        optimizer=optimizer, params=Params({"type": "inverse_time_decay", "po": po})
    )
    return optimizer, scheduler


def test_rate_in_epoch_e_is_lr_over_one_plus_po_times_e():
    optimizer, scheduler = _scheduler(po=0.5)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        scheduler.step()  # the trainer calls this at the end of every epoch
    assert rates == pytest.approx([0.01 / (1 + 0.5 * e) for e in range(4)])


def test_resumes_from_state_dict():
    optimizer, scheduler = _scheduler(po=0.1)
    for _ in range(3):
        scheduler.step()
    state = scheduler.state_dict()
    optimizer2, scheduler2 = _scheduler(po=0.1)
    scheduler2.load_state_dict(state)
    scheduler2.step()
    assert optimizer2.param_groups[0]["lr"] == pytest.approx(0.01 / (1 + 0.1 * 4))


def test_negative_po_is_rejected():
    with pytest.raises(ValueError, match="po must be >= 0"):
        _scheduler(po=-1)


@TrainerCallback.register("test_record_learning_rate")
class RecordLearningRate(TrainerCallback):
    """Appends the optimizer's learning rate of each epoch's batches to `learning_rates.json`."""

    def on_batch(self, trainer, batch_inputs, batch_outputs, batch_metrics, epoch, batch_number,
                 is_training, is_primary=True, batch_grad_norm=None, **kwargs) -> None:
        if is_training and batch_number == 1:
            path = Path(self.serialization_dir) / "learning_rates.json"
            rates = json.loads(path.read_text()) if path.exists() else []
            path.write_text(json.dumps(rates + [trainer.optimizer.param_groups[0]["lr"]]))


def test_allennlp_train_decays_the_rate_per_epoch(tmp_path):
    # Through `allennlp train`'s machinery, as a config's trainer uses it.
    from allennlp.commands.train import train_model

    train = write_conll(tmp_path / "train.txt", TINY_SENTENCES)
    config = tiny_config(train, train)
    config["trainer"]["num_epochs"] = 4
    config["trainer"]["optimizer"] = {"type": "sgd", "lr": 0.1}
    config["trainer"]["learning_rate_scheduler"] = {"type": "inverse_time_decay", "po": 0.5}
    config["trainer"]["callbacks"] = [{"type": "test_record_learning_rate"}]
    train_model(Params(config), str(tmp_path / "run"))
    rates = json.loads((tmp_path / "run" / "learning_rates.json").read_text())
    assert rates == pytest.approx([0.1 / (1 + 0.5 * epoch) for epoch in range(4)])
