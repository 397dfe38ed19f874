"""
Batched, vectorised Viterbi decoding for a linear-chain CRF.

allennlp's `ConditionalRandomField.viterbi_tags` decodes one sentence at a time with Python-level
loops; here the whole batch moves through time together, so the work per timestep is one
(batch, tags, tags) max on the model's device. Only torch is needed (no allennlp import).
"""
from typing import List, Optional, Tuple

import torch


def viterbi_decode_batch(
    logits: torch.Tensor,
    mask: torch.Tensor,
    transitions: torch.Tensor,
    start_transitions: Optional[torch.Tensor] = None,
    end_transitions: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Most likely tag sequence for every sentence of a batch.

    # Parameters

    logits : `torch.Tensor`, (batch, time, tags) emission scores.
    mask : `torch.Tensor`, (batch, time) bool; each row must be a prefix of `True`s (as
        allennlp's padding produces). A row with no `True` decodes to an empty path.
    transitions : `torch.Tensor`, (tags, tags) score of moving from tag i to tag j.
    start_transitions, end_transitions : `torch.Tensor`, optional, (tags,) scores of starting and
        ending in each tag.

    # Returns

    `(paths, scores)`: paths (batch, time) long, valid where `mask`; scores (batch,).
    """
    batch_size, max_len, num_tags = logits.shape
    if max_len == 0:
        empty = logits.new_zeros((batch_size, 0), dtype=torch.long)
        return empty, logits.new_zeros(batch_size)
    mask = mask.bool()
    lengths = mask.sum(dim=1)
    score = logits[:, 0]
    if start_transitions is not None:
        score = score + start_transitions.unsqueeze(0)
    # backpointers[t][b, j]: best previous tag for tag j at step t (identity once a row has ended,
    # so backtracking through padding keeps the last real tag).
    identity = torch.arange(num_tags, device=logits.device).expand(batch_size, num_tags)
    backpointers = []
    # (1, to, from): the max over previous tags then reduces the contiguous last dimension.
    trans = transitions.t().contiguous().unsqueeze(0)
    for t in range(1, max_len):
        best_score, best_prev = (score.unsqueeze(1) + trans).max(dim=2)
        step_mask = mask[:, t].unsqueeze(1)
        score = torch.where(step_mask, best_score + logits[:, t], score)
        backpointers.append(torch.where(step_mask, best_prev, identity))
    if end_transitions is not None:
        score = score + end_transitions.unsqueeze(0)
    best_scores, last_tag = score.max(dim=1)
    path = [last_tag]
    for pointers in reversed(backpointers):
        last_tag = pointers.gather(1, last_tag.unsqueeze(1)).squeeze(1)
        path.append(last_tag)
    path.reverse()
    paths = torch.stack(path, dim=1)
    paths = paths.masked_fill(~mask, 0)
    best_scores = best_scores.masked_fill(lengths == 0, 0.0)
    return paths, best_scores


def paths_to_lists(paths: torch.Tensor, mask: torch.Tensor, scores: torch.Tensor) -> List[Tuple[List[int], float]]:
    """(paths, scores) from `viterbi_decode_batch` as allennlp's list of `(tag_ids, score)`."""
    lengths = mask.bool().sum(dim=1).tolist()
    rows = paths.tolist()
    return [(row[:length], score) for row, length, score in zip(rows, lengths, scores.tolist())]
