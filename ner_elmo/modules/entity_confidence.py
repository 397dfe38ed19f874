"""
A confidence for every predicted entity: the probability, under the tagger's own distribution
over tag sequences, that the span is an entity of that type.

For a CRF this is exact: the forward-backward pass (`crf_forward_backward`, batched, with the
constrained transitions the decoder uses, so forbidden sequences have no weight) gives, for
every position, the log-sum of the scores of all prefixes ending in each tag (`alpha`) and of all
suffixes starting after it (`beta`). The entity `(X, i, j)` exists in a tag sequence exactly when
a chunk of type X starts at token i (given the tag before it), every tag up to j - 1 continues it,
and the chunk closes before token j (given the tag at j, or the sentence end). Which tag pairs
start, continue and close a chunk is read from `ner_elmo.data.tag_schemes.to_spans` (conlleval's
reading, the one the predictor's entities come from), so the event and the entity agree in every
scheme (IOB1, BIO, BIOUL, BIOES). Its probability is a small forward pass over the span that
allows only those pairs (`EntityScorer.probability`): one entity costs a few (tags x tags)
operations.

For a softmax tagger (no transitions) the same computation runs with each token's own
distribution as `alpha`, no transitions and `beta = 0`: the probability of the event if the
tokens' tags were independent, which is how that model predicts them.

Only numpy (torch tensors are accepted and copied): the allennlp `ner` predictor, the torch
runtime and the ONNX runtime call it alike.
"""
from typing import List, Optional, Sequence, Tuple

import numpy

from ner_elmo.data.tag_schemes import to_spans

_NEG = -numpy.inf


def _float64(value) -> numpy.ndarray:
    """A numpy float64 copy of an array or a (CPU or GPU) torch tensor."""
    if hasattr(value, "detach"):
        value = value.detach().double().cpu().numpy()
    return numpy.asarray(value, dtype=numpy.float64)


def crf_forward_backward(
    logits, mask, transitions, start=None, end=None
) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """
    `(alpha, beta, log_z)` of a linear-chain CRF for a batch, as numpy float64 arrays.

    `logits` `(batch, time, tags)`, `mask` `(batch, time)` a prefix of `True`s per row,
    `transitions[i, j]` the score of tag i followed by tag j, `start`/`end` `(tags,)`: numpy
    arrays or torch tensors. `alpha[b, t, k]`: log-sum of the scores of all tag sequences of
    positions `0..t` ending in k (its emission included); `beta[b, t, k]`: log-sum over the
    continuations after `t` from k (the end score included); `log_z[b]`: the log partition
    function. Positions past a row's length hold zeros; a tag no sequence can reach has `-inf`.

    Computed in probability space with a scale per step (each step one small matrix product
    instead of a log-sum-exp over tags x tags): the forward vector is renormalised to sum 1 at
    every position and its log scale accumulated; float64 keeps every allowed path above
    underflow (its range is 1e-308; a forbidden transition, scored -10000, is exactly 0). In
    numpy, so that the torch-free (ONNX) runtime and the torch ones score with one function;
    the steps are (batch, tags) x (tags, tags) products, where numpy's per-call cost is lowest.
    """
    logits = _float64(logits)
    batch, steps, tags = logits.shape
    transitions = _float64(transitions)
    start = numpy.zeros(tags) if start is None else _float64(start)
    end = numpy.zeros(tags) if end is None else _float64(end)
    mask = _float64(mask) > 0
    lengths = mask.sum(axis=1)
    alpha = numpy.zeros((batch, steps, tags))
    beta = numpy.zeros((batch, steps, tags))
    if steps == 0:
        return alpha, beta, numpy.zeros(batch)
    shift = transitions.max()
    weights = numpy.exp(transitions - shift)  # (from, to)
    peaks = logits.max(axis=2, keepdims=True)  # (batch, time, 1)
    emitted = numpy.exp(logits - peaks)

    def normalised(vector):
        total = vector.sum(axis=1, keepdims=True)
        return vector / total, numpy.log(total)

    with numpy.errstate(divide="ignore"):  # log(0) = -inf: a tag no sequence reaches
        first = logits[:, 0] + start
        first_peak = first.max(axis=1, keepdims=True)
        forward, log_total = normalised(numpy.exp(first - first_peak))
        scale = first_peak + log_total  # (batch, 1): log of what `forward` was divided by
        alpha[:, 0] = numpy.log(forward) + scale
        for t in range(1, steps):
            step, log_total = normalised((forward @ weights) * emitted[:, t])
            step_scale = scale + shift + peaks[:, t] + log_total
            alpha[:, t] = numpy.log(step) + step_scale
            running = mask[:, t : t + 1]
            forward = numpy.where(running, step, forward)
            scale = numpy.where(running, step_scale, scale)
        # `forward`, `scale` now hold each row's last position.
        final = forward * numpy.exp(end - end.max())
        log_z = (numpy.log(final.sum(axis=1, keepdims=True)) + scale + end.max())[:, 0]

        last = numpy.maximum(lengths - 1, 0)[:, None]
        # The backward vector at a row's last position: the end scores alone.
        ending, log_total = normalised(numpy.broadcast_to(numpy.exp(end - end.max()), (batch, tags)))
        ending_scale = end.max() + log_total
        backward, back_scale = ending, ending_scale
        for t in range(steps - 1, -1, -1):
            if t + 1 < steps:
                step, log_total = normalised((backward * emitted[:, t + 1]) @ weights.T)
                step_scale = back_scale + shift + peaks[:, t + 1] + log_total
                inside, at_last = t < last, t == last
                backward = numpy.where(inside, step, numpy.where(at_last, ending, backward))
                back_scale = numpy.where(inside, step_scale, numpy.where(at_last, ending_scale, back_scale))
            beta[:, t] = numpy.log(backward) + back_scale
    padding = (numpy.arange(steps)[None, :] >= lengths[:, None])[:, :, None]
    return numpy.where(padding, 0.0, alpha), numpy.where(padding, 0.0, beta), log_z


class SentenceScores:
    """
    One sentence's forward-backward quantities, as numpy float64 arrays: `alpha`, `beta`,
    `emissions` `(length, tags)`, `transitions` `(tags, tags)`, `start`, `end` `(tags,)` and
    `log_z`.
    """

    def __init__(self, alpha, beta, emissions, transitions, start, end, log_z: float) -> None:
        self.alpha = alpha
        self.beta = beta
        self.emissions = emissions
        self.transitions = transitions
        self.start = start
        self.end = end
        self.log_z = log_z

    @classmethod
    def batch_from_crf(cls, logits, mask, transitions, start=None, end=None) -> List["SentenceScores"]:
        """Each row's scores under a CRF (see `crf_forward_backward`; arrays or tensors)."""
        alpha, beta, log_z = crf_forward_backward(logits, mask, transitions, start, end)
        emissions = _float64(logits)
        tags = emissions.shape[-1]
        transitions = _float64(transitions)
        start = numpy.zeros(tags) if start is None else _float64(start)
        end = numpy.zeros(tags) if end is None else _float64(end)
        lengths = (_float64(mask) > 0).sum(axis=1).tolist()
        return [
            cls(alpha[row, :length], beta[row, :length], emissions[row, :length], transitions, start, end, float(z))
            for row, (length, z) in enumerate(zip(lengths, log_z.tolist()))
        ]

    @classmethod
    def from_probabilities(cls, probabilities) -> "SentenceScores":
        """A softmax tagger's sentence from its `(length, tags)` per-token probabilities."""
        probabilities = numpy.asarray(probabilities, dtype=numpy.float64)
        with numpy.errstate(divide="ignore"):
            log_q = numpy.log(probabilities)
        tags = probabilities.shape[-1]
        zeros = numpy.zeros(tags)
        return cls(log_q, numpy.zeros_like(log_q), log_q, numpy.zeros((tags, tags)), zeros, zeros, 0.0)


class EntityScorer:
    """
    The probability of each predicted entity (see the module docstring) for a tagger whose tags
    are `labels` (index -> tag) in `scheme`.
    """

    def __init__(self, labels: Sequence[str], scheme: str) -> None:
        self.labels = list(labels)
        self.scheme = scheme
        count = len(self.labels)
        self._type = [_chunk_type(label) for label in self.labels]
        self._outside_cache: dict = {}
        # [p, k]: a chunk starts at k after p (row `count`: k is the first token).
        starts = numpy.zeros((count + 1, count), dtype=bool)
        # [p, k]: k continues p's chunk.
        continues = numpy.zeros((count, count), dtype=bool)
        # [k, n]: k's chunk closes before n (column `count`: the sentence ends after k).
        closes = numpy.zeros((count, count + 1), dtype=bool)
        for k, tag in enumerate(self.labels):
            starts[count, k] = closes[k, count] = bool(to_spans([tag], scheme))
            for p, previous in enumerate(self.labels):
                spans = to_spans([previous, tag], scheme)
                starts[p, k] = any(span_start == 1 for _, span_start, _ in spans)
                closes[p, k] = any(span_start == 0 and span_end == 1 for _, span_start, span_end in spans)
                continues[p, k] = any(span == (spans[0][0], 0, 2) for span in spans)
        # As scores to add: 0 where allowed, -inf where not.
        self._starts_add, self._continues_add, self._closes_add = (
            numpy.where(allowed, 0.0, _NEG) for allowed in (starts, continues, closes)
        )

    def _outside(self, label: str) -> numpy.ndarray:
        """0 for the tags of type `label`, -inf for the others."""
        if label not in self._outside_cache:
            self._outside_cache[label] = numpy.array([0.0 if kind == label else _NEG for kind in self._type])
        return self._outside_cache[label]

    def probability(self, scores: SentenceScores, label: str, start: int, end: int) -> float:
        """The probability that tokens `[start, end)` of the sentence are one `label` entity."""
        forbidden = self._outside(label)
        if start == 0:
            first = scores.start + scores.emissions[0] + self._starts_add[-1]
        else:
            entering = scores.alpha[start - 1][:, None] + scores.transitions + self._starts_add[:-1]
            first = _logsumexp(entering, axis=0) + scores.emissions[start]
        current = first + forbidden
        for t in range(start + 1, end):
            moving = current[:, None] + scores.transitions + self._continues_add
            current = _logsumexp(moving, axis=0) + scores.emissions[t] + forbidden
        if end == len(scores.emissions):
            total = _logsumexp(current + scores.end + self._closes_add[:, -1], axis=0)
        else:
            after = scores.emissions[end] + scores.beta[end]
            closing = current[:, None] + scores.transitions + after[None, :] + self._closes_add[:, :-1]
            total = _logsumexp(closing.ravel(), axis=0)
        return float(min(1.0, max(0.0, numpy.exp(total - scores.log_z))))


def _chunk_type(tag: str) -> Optional[str]:
    return None if tag == "O" or "-" not in tag else tag.split("-", 1)[1]


def _logsumexp(values: numpy.ndarray, axis: int):
    peak = numpy.max(values, axis=axis, keepdims=True)
    safe = numpy.where(numpy.isfinite(peak), peak, 0.0)
    with numpy.errstate(divide="ignore"):
        summed = numpy.log(numpy.sum(numpy.exp(values - safe), axis=axis, keepdims=True)) + safe
    return numpy.squeeze(summed, axis=axis)
