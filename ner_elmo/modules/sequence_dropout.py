"""Dropout for (batch, time, features) sequences: per element, locked over time, and per word."""
import torch

DROPOUT_KINDS = ("standard", "locked")


class SequenceDropout(torch.nn.Module):
    """
    Dropout of a `(batch, time, features)` tensor, active in training only.

    # Parameters

    p : `float`
        The probability of dropping a feature; kept features are scaled by `1 / (1 - p)`.
    kind : `str`, optional (default = `"standard"`)
        `"standard"` draws a mask per element (`torch.nn.Dropout`); `"locked"` draws one mask per
        sentence and feature and applies it at every time step (variational dropout, Gal &
        Ghahramani 2016; flair's `LockedDropout`), so a feature is dropped for a whole sentence.
    word_p : `float`, optional (default = `0.0`)
        The probability of zeroing a token's whole vector (flair's `WordDropout`): the model
        learns to tag a word from its context alone. Not rescaled, as in flair: at the small rates
        it is used with (about 0.05) the inputs' scale barely moves.
    """

    def __init__(self, p: float, kind: str = "standard", word_p: float = 0.0) -> None:
        super().__init__()
        if kind not in DROPOUT_KINDS:
            raise ValueError(f"dropout kind must be one of {', '.join(map(repr, DROPOUT_KINDS))}, got {kind!r}")
        for name, value in (("dropout", p), ("word_dropout", word_p)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        self.p = p
        self.kind = kind
        self.word_p = word_p

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return inputs
        batch, time, features = inputs.shape
        outputs = inputs
        if self.p:
            if self.kind == "standard":
                outputs = torch.nn.functional.dropout(outputs, self.p, training=True)
            else:
                keep = outputs.new_empty(batch, 1, features).bernoulli_(1.0 - self.p)
                outputs = outputs * keep / (1.0 - self.p)
        if self.word_p:
            outputs = outputs * outputs.new_empty(batch, time, 1).bernoulli_(1.0 - self.word_p)
        return outputs

    def extra_repr(self) -> str:
        return f"p={self.p}, kind={self.kind!r}, word_p={self.word_p}"
