import pytest
import torch
from allennlp.common import Params
from allennlp.training.learning_rate_schedulers import LearningRateScheduler


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
