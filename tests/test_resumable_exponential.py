"""
`ner_exponential` against allennlp's `exponential`: the same averages in one uninterrupted run,
and after a save and a load into a new model (what `--recover` does) it goes on averaging that
model's parameters from where it stopped, where allennlp's averages the checkpoint's copies and
restarts its decay schedule.
"""
import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.training.moving_average import ExponentialMovingAverage, MovingAverage

import ner_elmo.plugin  # noqa: F401  (registers ner_exponential)
from ner_elmo.training.moving_averages.ner_exponential import NerExponentialMovingAverage


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 2)


def _step(model, value):
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(value)


def _averaged(model, average):
    average.assign_average_value()
    try:
        return {name: p.detach().clone() for name, p in model.named_parameters()}
    finally:
        average.restore()


def _run(model, average, steps, first_update=1):
    # The trainer passes its batch count + 1; after --recover that count starts again at 0.
    for n, value in enumerate(steps, start=first_update):
        _step(model, value)
        average.apply(n)


def test_registered_and_equal_to_allennlps_in_an_uninterrupted_run():
    assert MovingAverage.by_name("ner_exponential") is NerExponentialMovingAverage
    stock_model, our_model = _model(), _model()
    stock = ExponentialMovingAverage(stock_model.named_parameters(), decay=0.9)
    ours = NerExponentialMovingAverage(our_model.named_parameters(), decay=0.9)
    _run(stock_model, stock, [0.5, -1.0, 2.0, 0.25])
    _run(our_model, ours, [0.5, -1.0, 2.0, 0.25])
    expected, got = _averaged(stock_model, stock), _averaged(our_model, ours)
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
    # The average differs from the last weights: the test would see a no-op average.
    assert not torch.equal(got["weight"], our_model.weight.detach())


def _whole_and_resumed(average_class):
    """The averaged weights after six steps in one run, and after three, a save, a load into a new
    model and three more (the trainer's count starting again at 1, as after --recover)."""
    steps = [0.5, -1.0, 2.0, 0.25, 1.5, -0.75]
    whole_model = _model()
    whole = average_class(whole_model.named_parameters(), decay=0.9)
    _run(whole_model, whole, steps)
    first_model = _model()
    first = average_class(first_model.named_parameters(), decay=0.9)
    _run(first_model, first, steps[:3])
    resumed_model = _model(seed=1)
    resumed_model.load_state_dict(first_model.state_dict())
    resumed = average_class(resumed_model.named_parameters(), decay=0.9)
    resumed.load_state_dict(first.state_dict())
    _run(resumed_model, resumed, steps[3:], first_update=1)
    return _averaged(whole_model, whole), _averaged(resumed_model, resumed), first.state_dict()


def test_resumed_average_tracks_the_new_models_parameters_from_where_it_stopped():
    expected, got, saved_state = _whole_and_resumed(NerExponentialMovingAverage)
    assert set(saved_state) == {"shadows", "updates"}
    for name in expected:
        assert torch.allclose(got[name], expected[name], rtol=0, atol=1e-6), name


def test_allennlps_average_is_what_fails_to_resume():
    # The reason ner_exponential exists: allennlp's average, resumed the same way, ends elsewhere.
    expected, got, _ = _whole_and_resumed(ExponentialMovingAverage)
    assert not torch.allclose(got["weight"], expected["weight"])


def test_loads_allennlps_checkpoint_state_and_rejects_another_models():
    model = _model()
    stock = ExponentialMovingAverage(model.named_parameters(), decay=0.9)
    _run(model, stock, [1.0, 2.0])
    ours = NerExponentialMovingAverage(_model().named_parameters(), decay=0.9)
    ours.load_state_dict(stock.state_dict())
    assert torch.equal(ours._shadows["weight"], stock._shadows["weight"])

    other = NerExponentialMovingAverage(torch.nn.Bilinear(2, 2, 1).named_parameters())
    with pytest.raises(ConfigurationError, match="does not cover this model's parameters"):
        other.load_state_dict(ours.state_dict())
