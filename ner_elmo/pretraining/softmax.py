"""
The softmax of the language model over a frequency-sorted vocabulary: sampled in training,
full for held-out perplexity.

Sampled softmax (Jean et al. 2015, as tensorflow's `sampled_softmax_loss` that bilm-tf uses):
each step draws `num_samples` distinct negatives from the log-uniform (Zipfian) distribution
`P(k) = log((k + 2) / (k + 1)) / log(V + 1)`, shared by every position of the batch; every
logit, true or sampled, is corrected by subtracting the log of its expected count in the
sample (`log Q`), and a sampled word that is a position's own target is removed from that
position's softmax ("accidental hit").  The draw depends only on `(seed, step)`, so resuming
and data-parallel processes draw the same negatives.
"""
import math
from typing import Tuple

import numpy
import torch
from torch import nn


def log_uniform_probabilities(ids: numpy.ndarray, vocab_size: int) -> numpy.ndarray:
    ids = ids.astype(numpy.float64)
    return (numpy.log(ids + 2.0) - numpy.log(ids + 1.0)) / math.log(vocab_size + 1.0)


def draw_log_uniform(vocab_size: int, num_samples: int, seed: int, step: int) -> Tuple[numpy.ndarray, int]:
    """
    `num_samples` distinct ids in draw order, and the number of draws it took (tensorflow's
    `log_uniform_candidate_sampler` with `unique=True`).
    """
    if not 0 < num_samples < vocab_size:
        raise ValueError(f"num_samples must be in [1, {vocab_size - 1}], got {num_samples}")
    rng = numpy.random.default_rng([seed, step])
    log_range = math.log(vocab_size + 1.0)
    draws = numpy.empty(0, dtype=numpy.int64)
    while True:
        uniform = rng.random(max(num_samples, 1024))
        chunk = (numpy.floor(numpy.exp(uniform * log_range)) - 1).astype(numpy.int64)
        draws = numpy.concatenate([draws, numpy.clip(chunk, 0, vocab_size - 1)])
        _, first = numpy.unique(draws, return_index=True)
        if len(first) >= num_samples:
            first = numpy.sort(first)[:num_samples]
            return draws[first], int(first[-1]) + 1


def log_expected_counts(ids: numpy.ndarray, vocab_size: int, num_tries: int) -> numpy.ndarray:
    """log of the probability that `ids` appear in a unique sample of `num_tries` draws."""
    p = log_uniform_probabilities(ids, vocab_size)
    return numpy.log(-numpy.expm1(num_tries * numpy.log1p(-p)))


class Softmax(nn.Module):
    """
    Output layer `W` `(vocab_size, dim)`, `b` `(vocab_size,)`, shared by both directions
    (bilm-tf's initialisation: normal with standard deviation `1 / sqrt(dim)`, zero bias).
    """

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.weight = nn.Parameter(torch.empty(vocab_size, dim))
        self.bias = nn.Parameter(torch.empty(vocab_size))

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.weight.normal_(0.0, 1.0 / math.sqrt(self.weight.shape[1]), generator=generator)
        self.bias.zero_()

    def sampled_loss(self, hidden: torch.Tensor, targets: torch.Tensor, sampled: torch.Tensor,
                     log_q_sampled: torch.Tensor, log_q_targets: torch.Tensor) -> torch.Tensor:
        """
        Mean sampled-softmax loss of `hidden` `(n, dim)` for `targets` `(n,)`; `sampled` `(s,)`
        negatives with their `log Q`, `log_q_targets` `(n,)` the targets'.
        """
        true_logits = (hidden * self.weight[targets]).sum(dim=1) + self.bias[targets] - log_q_targets
        sampled_logits = torch.addmm(self.bias[sampled], hidden, self.weight[sampled].t()) - log_q_sampled
        hits = targets.unsqueeze(1) == sampled.unsqueeze(0)
        sampled_logits = sampled_logits.masked_fill(hits, float("-inf"))
        logits = torch.cat([true_logits.unsqueeze(1), sampled_logits], dim=1)
        return (torch.logsumexp(logits, dim=1) - true_logits).mean()

    def full_losses(self, hidden: torch.Tensor, targets: torch.Tensor, chunk_rows: int = 2048) -> torch.Tensor:
        """Per-position cross-entropy `(n,)` with the full softmax, in chunks of rows."""
        losses = []
        for start in range(0, hidden.shape[0], chunk_rows):
            logits = torch.addmm(self.bias, hidden[start:start + chunk_rows], self.weight.t())
            losses.append(nn.functional.cross_entropy(logits, targets[start:start + chunk_rows], reduction="none"))
        return torch.cat(losses) if losses else hidden.new_zeros(0)
