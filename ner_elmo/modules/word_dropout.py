"""The tagger's dropout kinds: torch's per element, allennlp's locked over time, and word dropout."""
import torch
from allennlp.modules.input_variational_dropout import InputVariationalDropout

# "locked" is allennlp's variational dropout (Gal & Ghahramani 2016): one mask per sentence and
# feature, applied at every time step.
DROPOUT_KINDS = {"standard": torch.nn.Dropout, "locked": InputVariationalDropout}


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def sequence_dropout(p: float, kind: str = "standard") -> torch.nn.Dropout:
    """Dropout of a `(batch, time, features)` tensor of the given kind (`DROPOUT_KINDS`)."""
    if kind not in DROPOUT_KINDS:
        raise ValueError(f"dropout kind must be one of {', '.join(map(repr, DROPOUT_KINDS))}, got {kind!r}")
    _check_probability("dropout", p)
    return DROPOUT_KINDS[kind](p)


class WordDropout(torch.nn.Module):
    """
    Zeroes a token's whole vector of a `(batch, time, features)` tensor with probability `p`, in
    training only (flair's word dropout): the model learns to tag a word from its context alone.
    Not rescaled, as in flair: at the small rates it is used with (about 0.05) the inputs' scale
    barely moves.

    # Parameters

    p : `float`
        The probability of dropping a token.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        _check_probability("word_dropout", p)
        self.p = p

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.p:
            return inputs
        return inputs * inputs.new_empty(*inputs.shape[:2], 1).bernoulli_(1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
