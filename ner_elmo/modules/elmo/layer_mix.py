"""
The ELMo representation from the biLM's layers, in torch alone: the learned scalar mix (allennlp's
`ScalarMix` without layer normalisation, the same operations in the same order) and the removal
of the sentence marks the biLM adds. The `ner_elmo` token embedder and the torch-only runtime
(`ner_elmo.runtime`) both call these.
"""
from typing import List, Sequence, Tuple

import torch


def mix_layers(activations: List[torch.Tensor], scalar_parameters: Sequence[torch.Tensor], gamma: torch.Tensor) -> torch.Tensor:
    """`gamma * sum(softmax(scalar_parameters)[k] * activations[k])`."""
    weights = torch.split(torch.softmax(torch.cat([parameter.reshape(1) for parameter in scalar_parameters]), dim=0), 1)
    return gamma * sum(weight * activation for weight, activation in zip(weights, activations))


def remove_sentence_boundaries(tensor: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.BoolTensor]:
    """
    `(batch, time, dim)` activations of sentences framed by `<S>` and `</S>` (`mask` marks each
    row's length, marks included) without them: `(batch, time - 2, dim)`, zero past each
    sentence, and its mask. A row of two or fewer positions becomes all padding.
    """
    lengths = mask.sum(dim=1)
    steps = tensor.size(1) - 2
    new_mask = torch.arange(steps, device=tensor.device).unsqueeze(0) < (lengths - 2).unsqueeze(1)
    trimmed = tensor[:, 1 : 1 + steps] * new_mask.unsqueeze(2).to(tensor.dtype)
    return trimmed, new_mask
