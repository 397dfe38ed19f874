import itertools
import math

import numpy
import pytest
import torch

from ner_elmo.data.tag_schemes import to_spans
from ner_elmo.modules.entity_confidence import EntityScorer, SentenceScores, crf_forward_backward

LABELS = {
    "BIOUL": ["O", "B-PER", "I-PER", "L-PER", "U-PER", "U-LOC"],
    "BIO": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
    "IOB1": ["O", "I-PER", "B-PER", "I-LOC"],
}


def _sequence_score(emissions, transitions, start, end, tags):
    score = start[tags[0]] + end[tags[-1]] + sum(emissions[t, tag] for t, tag in enumerate(tags))
    return score + sum(transitions[a, b] for a, b in zip(tags, tags[1:]))


def test_a_hand_worked_crf():
    # Two tags, one token: P(U-PER) = e^log3 / (e^0 + e^log3) = 3/4; with two tokens and a
    # transition bonus of log 2 for U-PER -> U-PER, the four sequences weigh 1, 3, 3, 18 (O O,
    # O U, U O, U U): the first token is an entity with probability (3 + 18) / 25.
    scorer = EntityScorer(["O", "U-PER"], "BIOUL")
    logits = torch.tensor([[[0.0, math.log(3)]]], dtype=torch.float64)
    (scores,) = SentenceScores.batch_from_crf(logits, torch.ones(1, 1, dtype=torch.bool), torch.zeros(2, 2))
    assert scorer.probability(scores, "PER", 0, 1) == pytest.approx(0.75, abs=1e-12)
    logits = torch.tensor([[[0.0, math.log(3)], [0.0, math.log(3)]]], dtype=torch.float64)
    transitions = torch.tensor([[0.0, 0.0], [0.0, math.log(2)]], dtype=torch.float64)
    (scores,) = SentenceScores.batch_from_crf(logits, torch.ones(1, 2, dtype=torch.bool), transitions)
    assert scores.log_z == pytest.approx(math.log(25), abs=1e-12)
    assert scorer.probability(scores, "PER", 0, 1) == pytest.approx(21 / 25, abs=1e-12)
    assert scorer.probability(scores, "PER", 1, 2) == pytest.approx(21 / 25, abs=1e-12)
    assert scorer.probability(scores, "LOC", 0, 1) == 0.0


@pytest.mark.parametrize("scheme", sorted(LABELS))
def test_entity_probabilities_equal_enumeration_over_every_tag_sequence(scheme):
    labels = LABELS[scheme]
    scorer = EntityScorer(labels, scheme)
    generator = torch.Generator().manual_seed(len(scheme))
    tags, length = len(labels), 4
    logits = torch.randn(2, length, tags, generator=generator, dtype=torch.float64)
    mask = torch.tensor([[True] * 4, [True] * 3 + [False]])
    transitions = torch.randn(tags, tags, generator=generator, dtype=torch.float64)
    start = torch.randn(tags, generator=generator, dtype=torch.float64)
    end = torch.randn(tags, generator=generator, dtype=torch.float64)
    sentences = SentenceScores.batch_from_crf(logits, mask, transitions, start, end)
    for row, scores in enumerate(sentences):
        size = int(mask[row].sum())
        emissions = logits[row, :size].numpy()
        weights = {}
        for sequence in itertools.product(range(tags), repeat=size):
            weights[sequence] = math.exp(_sequence_score(emissions, transitions.numpy(), start.numpy(), end.numpy(), sequence))
        total = sum(weights.values())
        assert scores.log_z == pytest.approx(math.log(total), rel=1e-12)
        probability = {}
        for sequence, weight in weights.items():
            for span in to_spans([labels[k] for k in sequence], scheme):
                probability[span] = probability.get(span, 0.0) + weight / total
        checked = 0
        for label in ("PER", "LOC"):
            for begin in range(size):
                for finish in range(begin + 1, size + 1):
                    expected = probability.get((label, begin, finish), 0.0)
                    assert scorer.probability(scores, label, begin, finish) == pytest.approx(expected, abs=1e-12)
                    checked += expected > 0
        assert checked > 5


def test_forward_backward_marginals_sum_to_one_and_padding_is_zero():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 5, 4, generator=generator)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    transitions = torch.randn(4, 4, generator=generator)
    alpha, beta, log_z = crf_forward_backward(logits, mask, transitions)
    marginals = numpy.exp(alpha + beta - log_z[:, None, None])
    sums = marginals.sum(-1)
    mask = mask.numpy()
    numpy.testing.assert_allclose(sums[mask], numpy.ones(int(mask.sum())), atol=1e-12)
    assert (alpha[~mask] == 0).all() and (beta[~mask] == 0).all()


def test_softmax_scores_multiply_the_tokens_probabilities():
    scorer = EntityScorer(["O", "B-PER", "I-PER"], "BIO")
    probabilities = numpy.array([[0.1, 0.8, 0.1], [0.2, 0.1, 0.7], [0.5, 0.2, 0.3]])
    scores = SentenceScores.from_probabilities(probabilities)
    # B-PER I-PER then anything but I-PER; with the lenient reading an I-PER first token also
    # starts the entity.
    expected = (0.8 + 0.1) * 0.7 * (1 - 0.3)
    assert scorer.probability(scores, "PER", 0, 2) == pytest.approx(expected, abs=1e-12)
