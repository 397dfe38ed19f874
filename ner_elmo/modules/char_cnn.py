"""
The taggers' character CNN over a word (allennlp's `cnn` `Seq2VecEncoder`, as the
`distinct_character_encoding` embedder runs it), in torch alone, so that the torch-only runtime
(`ner_elmo.runtime`) runs the computation training ran.
"""
from typing import Callable, Optional, Sequence

import torch

#: allennlp's activation names (its `Activation` registry) that a character CNN may use.
ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda x: x,
}


def cnn_word_encodings(
    characters: torch.Tensor,
    mask: torch.BoolTensor,
    convolutions: Sequence[torch.nn.Conv1d],
    activation: Callable[[torch.Tensor], torch.Tensor],
    projection: Optional[torch.nn.Linear] = None,
) -> torch.Tensor:
    """
    `(words, num_filters * len(convolutions))` encodings of `(words, characters, dim)` character
    embeddings: each convolution, its activation, then the maximum over the positions whose
    window holds no padding (a word with no such position gets zeros), concatenated and
    projected. The same outputs as allennlp's `CnnEncoder` with these layers.
    """
    characters = (characters * mask.unsqueeze(-1)).transpose(1, 2)
    lengths = mask.sum(dim=1, keepdim=True)
    pooled = []
    for convolution in convolutions:
        activations = activation(convolution(characters))
        width = convolution.kernel_size[0]
        positions = torch.arange(activations.size(2), device=activations.device).unsqueeze(0)
        # A window that reaches past the word's last character reads padding.
        padded = (positions >= lengths - width + 1).unsqueeze(1)
        best = activations.masked_fill(padded, float("-inf")).max(dim=2)[0]
        pooled.append(best.masked_fill(best == float("-inf"), 0.0))
    encoded = torch.cat(pooled, dim=1) if len(pooled) > 1 else pooled[0]
    return projection(encoded) if projection is not None else encoded


def distinct_word_encodings(
    token_characters: torch.Tensor, encode: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """
    `encode` (distinct character-id rows -> encodings) run once per distinct word of
    `(..., characters)` ids, the encodings copied to every token: `(..., dim)`.
    """
    rows = token_characters.reshape(-1, token_characters.size(-1))
    # `index` maps each token to its distinct row; identical rows give identical encodings.
    distinct, index = torch.unique(rows, dim=0, return_inverse=True)
    encoded = encode(distinct)
    return encoded.index_select(0, index).view(*token_characters.shape[:-1], -1)
