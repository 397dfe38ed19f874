"""
Batched, vectorised Viterbi decoding for a linear-chain CRF.

allennlp's `ConditionalRandomField.viterbi_tags` decodes one sentence at a time. Here the whole
batch moves through time together: sentences are ordered longest first, so at step `t` the ones
still running are the first `k_t` rows, and one (k_t, tags, tags) max-plus step covers them all.
Rows that have ended drop out of the computation instead of being masked, which keeps the work
per step to a handful of tensor operations.

`viterbi_decode_numpy` is the decoder on a CPU: the model's (`batched_viterbi_crf`), the torch
runtime's and the ONNX runtime's (which imports no torch, so neither does this module until a
torch function is called). Per step its operations are on arrays of a few hundred numbers,
where numpy's per-call cost is a fraction of torch's. `viterbi_decode_batch` runs the same steps
in torch for tensors on a GPU.
"""
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import numpy

if TYPE_CHECKING:
    import torch


# allennlp scores forbidden transitions with this value rather than -inf; using the same number
# keeps decoded paths and their scores identical to the stock decoder.
FORBIDDEN = -10000.0


def constrained_transitions(
    transitions: "torch.Tensor",
    constraint_mask: "torch.Tensor",
    start_transitions: Optional["torch.Tensor"] = None,
    end_transitions: Optional["torch.Tensor"] = None,
) -> Tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
    """
    The transition, start and end scores of allennlp's `ConditionalRandomField` (its
    `transitions`, `_constraint_mask` `(tags + 2, tags + 2)`, and its start and end scores when
    it has them, else zeros) with every forbidden one set to `FORBIDDEN`, as its decoder sees
    them.
    """
    import torch

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


def _active_rows(sorted_lengths: Sequence[int], max_len: int) -> List[int]:
    """active[t]: how many sentences, sorted longest first, have a token at position t."""
    active, running = [], len(sorted_lengths)
    for t in range(max_len):
        while running and sorted_lengths[running - 1] <= t:
            running -= 1
        active.append(running)
    return active


def _max_plus_forward(emissions, active: List[int], trans, start, final_score, max_step) -> list:
    """
    The forward pass of both decoders (numpy arrays or torch tensors alike): `emissions`
    `(time, batch, tags)` sorted longest first, `trans` `(1, to, from)`. Fills `final_score` with
    each row's scores at its last position and returns the back-pointers of each step;
    `max_step(score, trans)` gives `(best, previous)` over the previous tags.
    """
    score = emissions[0, : active[0]]
    if start is not None:
        score = score + start
    backpointers = []
    for t in range(1, len(active)):
        k = active[t]
        if k < score.shape[0]:  # rows k.. ended at position t - 1
            final_score[k : score.shape[0]] = score[k:]
            score = score[:k]
        if k == 0:
            break
        best, previous = max_step(score, trans)
        score = best + emissions[t, :k]
        backpointers.append(previous)
    final_score[: score.shape[0]] = score
    return backpointers


def _numpy_max_step(score: numpy.ndarray, trans: numpy.ndarray):
    candidates = score[:, None, :] + trans
    previous = candidates.argmax(axis=2)
    return numpy.take_along_axis(candidates, previous[:, :, None], axis=2)[:, :, 0], previous


def _torch_max_step(score: "torch.Tensor", trans: "torch.Tensor"):
    return (score.unsqueeze(1) + trans).max(dim=2)


def viterbi_decode_numpy(
    logits: numpy.ndarray,
    lengths: numpy.ndarray,
    transitions: numpy.ndarray,
    start_transitions: Optional[numpy.ndarray] = None,
    end_transitions: Optional[numpy.ndarray] = None,
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """
    `viterbi_decode_batch` on numpy arrays: `logits` (batch, time, tags), `lengths` (batch,).
    Returns `(paths, scores)`: (batch, time) int64 tags, 0 past each row's length, and (batch,)
    path scores.
    """
    batch_size, max_len, num_tags = logits.shape
    lengths = numpy.asarray(lengths, dtype=numpy.int64)
    paths = numpy.zeros((batch_size, max_len), dtype=numpy.int64)
    scores = numpy.zeros(batch_size, dtype=logits.dtype)
    if max_len == 0 or batch_size == 0:
        return paths, scores
    order = numpy.argsort(-lengths, kind="stable")
    active = _active_rows(lengths[order].tolist(), max_len)
    if active[0] == 0:
        return paths, scores
    emissions = logits[order].transpose(1, 0, 2)  # (time, batch, tags)
    # (1, to, from): the max over previous tags reduces the contiguous last dimension.
    trans = numpy.ascontiguousarray(transitions.T)[None]
    final_score = numpy.zeros((batch_size, num_tags), dtype=logits.dtype)
    backpointers = _max_plus_forward(emissions, active, trans, start_transitions, final_score, _numpy_max_step)
    if end_transitions is not None:
        final_score = final_score + end_transitions
    last = final_score.argmax(axis=1)
    best_scores = final_score[numpy.arange(batch_size), last]
    sorted_paths = _backtrack_numpy(backpointers, last, active, max_len)
    # A row of length L took its final tag at t = L - 1; positions after it are padding.
    sorted_paths[numpy.arange(max_len)[None, :] >= lengths[order][:, None]] = 0
    paths[order] = sorted_paths
    scores[order] = best_scores
    scores[lengths == 0] = 0.0
    return paths, scores


def _runs_on_host(tensor: "torch.Tensor") -> bool:
    return tensor.device.type == "cpu"


def viterbi_decode_batch(
    logits: "torch.Tensor",
    mask: "torch.Tensor",
    transitions: "torch.Tensor",
    start_transitions: Optional["torch.Tensor"] = None,
    end_transitions: Optional["torch.Tensor"] = None,
) -> Tuple["torch.Tensor", "torch.Tensor"]:
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
    On a CPU, `viterbi_decode_numpy` does the work.
    """
    import torch

    batch_size, max_len, num_tags = logits.shape
    lengths = mask.bool().sum(dim=1)
    if _runs_on_host(logits):
        arrays = [None if value is None else value.detach().numpy() for value in (start_transitions, end_transitions)]
        paths, scores = viterbi_decode_numpy(
            logits.detach().numpy(), lengths.cpu().numpy(), transitions.detach().numpy(), *arrays
        )
        return torch.from_numpy(paths), torch.from_numpy(scores)
    paths = logits.new_zeros((batch_size, max_len), dtype=torch.long)
    scores = logits.new_zeros(batch_size)
    if max_len == 0 or batch_size == 0:
        return paths, scores
    order = torch.argsort(lengths, descending=True, stable=True)
    active = _active_rows(lengths[order].tolist(), max_len)
    if active[0] == 0:
        return paths, scores

    emissions = logits[order].transpose(0, 1)  # (time, batch, tags)
    # (1, to, from): the max over previous tags reduces the contiguous last dimension.
    trans = transitions.t().contiguous().unsqueeze(0)
    final_score = logits.new_zeros(batch_size, num_tags)
    backpointers = _max_plus_forward(emissions, active, trans, start_transitions, final_score, _torch_max_step)
    if end_transitions is not None:
        final_score = final_score + end_transitions
    best_scores, last = final_score.max(dim=1)

    sorted_paths = _backtrack_torch(backpointers, last, active, max_len)
    # A row of length L took its final tag at t = L - 1; positions after it are padding.
    positions = torch.arange(max_len, device=logits.device).unsqueeze(0)
    sorted_paths = sorted_paths.masked_fill(positions >= lengths[order].unsqueeze(1), 0)
    paths[order] = sorted_paths
    scores[order] = best_scores
    empty = lengths == 0
    scores = scores.masked_fill(empty, 0.0)
    return paths, scores


def _backtrack_torch(backpointers: List["torch.Tensor"], last: "torch.Tensor", active: List[int], max_len: int) -> "torch.Tensor":
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


def _backtrack_numpy(backpointers: List[numpy.ndarray], last: numpy.ndarray, active: List[int], max_len: int) -> numpy.ndarray:
    """`_backtrack_torch` on numpy arrays."""
    sorted_paths = numpy.zeros((last.shape[0], max_len), dtype=numpy.int64)
    last_tags = last.astype(numpy.int64)
    rows = numpy.arange(last.shape[0])
    for t in range(len(backpointers), 0, -1):
        k = active[t]
        sorted_paths[:, t] = last_tags
        last_tags[:k] = backpointers[t - 1][rows[:k], last_tags[:k]]
    sorted_paths[:, 0] = last_tags
    return sorted_paths


def paths_to_lists(paths: "torch.Tensor", mask: "torch.Tensor", scores: "torch.Tensor") -> List[Tuple[List[int], float]]:
    """(paths, scores) from `viterbi_decode_batch` as allennlp's list of `(tag_ids, score)`."""
    lengths = mask.bool().sum(dim=1).tolist()
    rows = paths.tolist()
    return [(row[:length], score) for row, length, score in zip(rows, lengths, scores.tolist())]
