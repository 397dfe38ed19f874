"""
Batched, vectorised Viterbi decoding for a linear-chain CRF.

allennlp's `ConditionalRandomField.viterbi_tags` decodes one sentence at a time. Here the whole
batch moves through time together: sentences are ordered longest first, so at step `t` the ones
still running are the first `k_t` rows, and one (k_t, tags, tags) max-plus step covers them all.
Rows that have ended drop out of the computation instead of being masked, which keeps the work
per step to a handful of tensor operations. Only torch and numpy are needed (no allennlp import).
"""
from typing import List, Optional, Tuple

import numpy
import torch


# allennlp scores forbidden transitions with this value rather than -inf; using the same number
# keeps decoded paths and their scores identical to the stock decoder.
FORBIDDEN = -10000.0


def constrained_transitions(
    transitions: torch.Tensor,
    constraint_mask: torch.Tensor,
    start_transitions: Optional[torch.Tensor] = None,
    end_transitions: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    The transition, start and end scores of allennlp's `ConditionalRandomField` (its
    `transitions`, `_constraint_mask` `(tags + 2, tags + 2)`, and its start and end scores when
    it has them, else zeros) with every forbidden one set to `FORBIDDEN`, as its decoder sees
    them.
    """
    num_tags = transitions.size(0)
    allowed = constraint_mask.detach().bool()
    forbidden = torch.tensor(FORBIDDEN, dtype=transitions.dtype, device=transitions.device)
    scores = torch.where(allowed[:num_tags, :num_tags], transitions.detach(), forbidden)
    zeros = torch.zeros(num_tags, dtype=transitions.dtype, device=transitions.device)
    start = zeros if start_transitions is None else start_transitions.detach()
    end = zeros if end_transitions is None else end_transitions.detach()
    start = torch.where(allowed[num_tags, :num_tags], start, forbidden)
    end = torch.where(allowed[:num_tags, num_tags + 1], end, forbidden)
    return scores, start, end


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

    `(paths, scores)`: paths (batch, time) long, 0 where `mask` is false; scores (batch,).
    """
    batch_size, max_len, num_tags = logits.shape
    lengths = mask.bool().sum(dim=1)
    paths = logits.new_zeros((batch_size, max_len), dtype=torch.long)
    scores = logits.new_zeros(batch_size)
    if max_len == 0 or batch_size == 0:
        return paths, scores
    order = torch.argsort(lengths, descending=True, stable=True)
    sorted_lengths: List[int] = lengths[order].tolist()
    # active[t]: how many (longest-first) sentences have a token at position t.
    active, running = [], batch_size
    for t in range(max_len):
        while running and sorted_lengths[running - 1] <= t:
            running -= 1
        active.append(running)
    if active[0] == 0:
        return paths, scores

    emissions = logits[order].transpose(0, 1)  # (time, batch, tags)
    # (1, to, from): the max over previous tags reduces the contiguous last dimension.
    trans = transitions.t().contiguous().unsqueeze(0)
    score = emissions[0, : active[0]]
    if start_transitions is not None:
        score = score + start_transitions
    final_score = logits.new_zeros(batch_size, num_tags)
    backpointers = []
    for t in range(1, max_len):
        k = active[t]
        if k < score.shape[0]:  # rows k.. ended at position t - 1
            final_score[k : score.shape[0]] = score[k:]
            score = score[:k]
        if k == 0:
            break
        best, previous = (score.unsqueeze(1) + trans).max(dim=2)
        score = best + emissions[t, :k]
        backpointers.append(previous)
    final_score[: score.shape[0]] = score
    if end_transitions is not None:
        final_score = final_score + end_transitions
    best_scores, last = final_score.max(dim=1)

    if logits.device.type == "cpu":
        sorted_paths = _backtrack_numpy(backpointers, last, active, max_len)
    else:
        sorted_paths = _backtrack_torch(backpointers, last, active, max_len)
    # A row of length L took its final tag at t = L - 1; positions after it are padding.
    positions = torch.arange(max_len, device=logits.device).unsqueeze(0)
    sorted_paths = sorted_paths.masked_fill(positions >= lengths[order].unsqueeze(1), 0)
    paths[order] = sorted_paths
    scores[order] = best_scores
    empty = lengths == 0
    scores = scores.masked_fill(empty, 0.0)
    return paths, scores


def _backtrack_torch(backpointers: List[torch.Tensor], last: torch.Tensor, active: List[int], max_len: int) -> torch.Tensor:
    """Follows the back-pointers from each row's final tag: (batch, time) tags, sorted order."""
    sorted_paths = last.new_zeros((last.size(0), max_len))
    last = last.clone()
    for t in range(len(backpointers), 0, -1):
        k = active[t]
        # Each row's own last position holds its final tag; earlier ones follow its pointers.
        sorted_paths[:, t] = last
        last[:k] = backpointers[t - 1].gather(1, last[:k].unsqueeze(1)).squeeze(1)
    sorted_paths[:, 0] = last
    return sorted_paths


def _backtrack_numpy(backpointers: List[torch.Tensor], last: torch.Tensor, active: List[int], max_len: int) -> torch.Tensor:
    """`_backtrack_torch` on CPU tensors through NumPy views: the same steps at a fraction of
    torch's per-operation cost, which dominates these tiny operations."""
    sorted_paths = numpy.zeros((last.size(0), max_len), dtype=numpy.int64)
    last_tags = last.numpy().copy()
    rows = numpy.arange(last.size(0))
    for t in range(len(backpointers), 0, -1):
        k = active[t]
        sorted_paths[:, t] = last_tags
        last_tags[:k] = backpointers[t - 1].numpy()[rows[:k], last_tags[:k]]
    sorted_paths[:, 0] = last_tags
    return torch.from_numpy(sorted_paths)


def paths_to_lists(paths: torch.Tensor, mask: torch.Tensor, scores: torch.Tensor) -> List[Tuple[List[int], float]]:
    """(paths, scores) from `viterbi_decode_batch` as allennlp's list of `(tag_ids, score)`."""
    lengths = mask.bool().sum(dim=1).tolist()
    rows = paths.tolist()
    return [(row[:length], score) for row, length, score in zip(rows, lengths, scores.tolist())]
