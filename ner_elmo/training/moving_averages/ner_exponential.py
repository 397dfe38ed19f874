from typing import Any, Dict, Iterable, Optional

from allennlp.common.checks import ConfigurationError
from allennlp.training.moving_average import ExponentialMovingAverage, MovingAverage, NamedParameter


@MovingAverage.register("ner_exponential")
class NerExponentialMovingAverage(ExponentialMovingAverage):
    """
    allennlp's `exponential` moving average of the weights (the same decay rule: the rate is
    `min(decay, (numerator + n) / (denominator + n))` at update `n`), made exact under
    `allennlp train --recover`. allennlp's own is not: its `load_state_dict` replaces the tracked
    parameters with the copies unpickled from the checkpoint, so a resumed run averages tensors the
    optimizer no longer updates (and validates, keeps and archives stale weights), and the trainer
    restarts `n` at 0, so the average forgets its past. This one copies the saved averages into its
    own tensors, keeps the model's parameters, and counts its updates in its own state. Its state
    is the averages and that count (not a second copy of the parameters); a checkpoint written with
    allennlp's `exponential` also loads.

    Registered as a `MovingAverage` with name "ner_exponential".

    # Parameters

    decay : `float`, optional (default = `0.9999`)
        The most weight kept by the average at each update.
    numerator : `float`, optional (default = `1.0`)
        With `denominator`, the lower rate of the first updates.
    denominator : `float`, optional (default = `10.0`)
    """

    def __init__(
        self,
        parameters: Iterable[NamedParameter],
        decay: float = 0.9999,
        numerator: float = 1.0,
        denominator: float = 10.0,
    ) -> None:
        super().__init__(parameters, decay=decay, numerator=numerator, denominator=denominator)
        self._updates = 0

    def apply(self, num_updates: Optional[int] = None) -> None:
        # The trainer's batch count starts again at 0 after --recover; this count does not.
        self._updates += 1
        super().apply(self._updates if num_updates is not None else None)

    def state_dict(self) -> Dict[str, Any]:
        return {"shadows": self._shadows, "updates": self._updates}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        saved = state_dict["shadows"]
        missing = sorted(self._shadows.keys() - saved.keys())
        extra = sorted(saved.keys() - self._shadows.keys())
        reshaped = sorted(
            name for name in self._shadows.keys() & saved.keys() if saved[name].shape != self._shadows[name].shape
        )
        if missing or extra or reshaped:
            raise ConfigurationError(
                "the checkpoint's moving average does not cover this model's parameters "
                f"(missing: {missing[:5]}, unknown: {extra[:5]}, other shapes: {reshaped[:5]})"
            )
        for name, shadow in self._shadows.items():
            shadow.copy_(saved[name])
        # allennlp's `exponential` does not count: a trainer passing n = batches + 1 is equivalent.
        self._updates = state_dict.get("updates", 0)
