import socket

import pytest
import torch
import torch.multiprocessing as mp
from allennlp.common import Params
from allennlp.common.testing.distributed_test import init_process
from allennlp.data import Vocabulary
from allennlp.training.metrics import Metric

from ner_elmo.scoring.conlleval import evaluate
from ner_elmo.training.metrics import conlleval as conlleval_metric
from ner_elmo.training.metrics.conlleval import ConllevalMetric

TAGS = ["O", "B-PER", "I-PER", "L-PER", "U-PER", "B-LOC", "L-LOC", "U-LOC"]
# two sentences, BIOUL, padded to length 4
GOLD = [["B-PER", "L-PER", "O", "U-LOC"], ["U-PER", "O", "O"]]
PREDICTED = [["B-PER", "L-PER", "O", "U-PER"], ["B-PER", "O", "O"]]


def make_vocab() -> Vocabulary:
    vocab = Vocabulary(non_padded_namespaces=["labels"])
    for tag in TAGS:
        vocab.add_token_to_namespace(tag, "labels")
    return vocab


def as_tensors(vocab, gold, predicted, length=4):
    def indices(sentences):
        rows = [[vocab.get_token_index(t, "labels") for t in tags] + [0] * (length - len(tags)) for tags in sentences]
        return torch.tensor(rows)

    mask = torch.tensor([[i < len(tags) for i in range(length)] for tags in gold])
    return indices(predicted), indices(gold), mask


def test_scores_equal_conlleval_on_the_tag_strings():
    vocab = make_vocab()
    metric = ConllevalMetric(vocab)
    metric(*as_tensors(vocab, GOLD, PREDICTED))
    result = metric.get_result()
    assert result.to_text() == evaluate(GOLD, PREDICTED, label_encoding="BIOUL").to_text()
    # gold PER(0-1) LOC(3) PER(0); predicted PER(0-1) PER(3) PER(0, "B-PER" then O): 2 of 3 right.
    # Tags are compared after the BIOUL -> BIO mapping: U-PER and B-PER both read B-PER.
    o = result.overall
    assert (o.found_correct, o.found_guessed, o.correct_chunks, o.tokens, o.correct_tags) == (3, 3, 2, 7, 6)


def test_get_metric_returns_fractions_and_resets():
    vocab = make_vocab()
    metric = ConllevalMetric(vocab, tag_namespace="labels", label_encoding="BIOUL")
    metric(*as_tensors(vocab, GOLD, PREDICTED))
    metrics = metric.get_metric(reset=True)
    assert metrics == pytest.approx(
        {
            "conlleval-precision-overall": 2 / 3,
            "conlleval-recall-overall": 2 / 3,
            "conlleval-f1-overall": 2 / 3,
            "conlleval-accuracy": 6 / 7,
            "conlleval-precision-LOC": 0.0,
            "conlleval-recall-LOC": 0.0,
            "conlleval-f1-LOC": 0.0,
            "conlleval-precision-PER": 2 / 3,
            "conlleval-recall-PER": 1.0,
            "conlleval-f1-PER": 0.8,
        }
    )
    assert metric.get_result().overall.tokens == 0


def test_accumulates_over_batches():
    vocab = make_vocab()
    metric = ConllevalMetric(vocab)
    metric(*as_tensors(vocab, GOLD[:1], PREDICTED[:1]))
    metric(*as_tensors(vocab, GOLD[1:], PREDICTED[1:]))
    assert metric.get_result().to_text() == evaluate(GOLD, PREDICTED, label_encoding="BIOUL").to_text()


def test_scores_are_reduced_to_their_argmax():
    vocab = make_vocab()
    predicted, gold, mask = as_tensors(vocab, GOLD, PREDICTED)
    logits = torch.nn.functional.one_hot(predicted, len(TAGS)).float() * 3 - 1
    by_index, by_logits = ConllevalMetric(vocab), ConllevalMetric(vocab)
    by_index(predicted, gold, mask)
    by_logits(logits.requires_grad_(), gold, mask)
    assert by_logits.get_metric() == by_index.get_metric()


def test_raw_encoding_keeps_the_tags():
    vocab = make_vocab()
    metric = ConllevalMetric(vocab, label_encoding=None)
    metric(*as_tensors(vocab, GOLD, PREDICTED))
    assert metric.get_result().to_text() == evaluate(GOLD, PREDICTED).to_text()


def test_shape_errors_are_explained():
    vocab = make_vocab()
    metric = ConllevalMetric(vocab)
    with pytest.raises(ValueError, match=r"got \(2, 3\) and \(2, 4\)"):
        metric(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long), None)
    with pytest.raises(ValueError, match="no tags in namespace 'tags'"):
        ConllevalMetric(Vocabulary(), tag_namespace="tags")


def test_registered_and_built_from_params():
    vocab = make_vocab()
    metric = Metric.from_params(Params({"type": "conlleval", "label_encoding": "BIOUL"}), vocabulary=vocab)
    assert isinstance(metric, ConllevalMetric) and metric.supports_distributed


def test_counts_are_summed_over_workers(monkeypatch):
    # Two workers that each saw one sentence must both report the two-sentence scores.
    vocab = make_vocab()
    worker_0, worker_1 = ConllevalMetric(vocab), ConllevalMetric(vocab)
    worker_0(*as_tensors(vocab, GOLD[:1], PREDICTED[:1]))
    worker_1(*as_tensors(vocab, GOLD[1:], PREDICTED[1:]))
    sent_by_worker_1 = []  # what worker 1 puts into the all-reduce
    monkeypatch.setattr(conlleval_metric, "dist_reduce_sum", lambda t: sent_by_worker_1.append(t) or t)
    worker_1._sum_over_workers(worker_1._accumulator.final_counts())
    monkeypatch.setattr(conlleval_metric, "is_distributed", lambda: True)
    monkeypatch.setattr(conlleval_metric, "dist_reduce_sum", lambda t: t + sent_by_worker_1[0])
    assert worker_0.get_result().to_text() == evaluate(GOLD, PREDICTED, label_encoding="BIOUL").to_text()


def _score_on_worker(rank: int, world_size: int, gpu_id: int, expected: str) -> None:
    vocab = make_vocab()
    metric = ConllevalMetric(vocab)
    metric(*as_tensors(vocab, GOLD[rank : rank + 1], PREDICTED[rank : rank + 1]))
    assert metric.get_result().to_text() == expected


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_workers_report_the_same_totals():
    expected = evaluate(GOLD, PREDICTED, label_encoding="BIOUL").to_text()
    # allennlp's own worker set-up, on a free port (its helper always takes 29500)
    mp.start_processes(
        init_process,
        args=(2, [-1, -1], _score_on_worker, (expected,), {}, "127.0.0.1", _free_port()),
        nprocs=2,
        start_method="fork",
    )
