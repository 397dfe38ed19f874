import pytest
import torch
from allennlp.modules.conditional_random_field import ConditionalRandomField, allowed_transitions

from ner_elmo.modules.conditional_random_field.batched_viterbi_crf import (
    BatchedViterbiConditionalRandomField,
)
from ner_elmo.modules.viterbi import viterbi_decode_batch

BIOUL = ["O", "B-PER", "I-PER", "L-PER", "U-PER", "B-LOC", "I-LOC", "L-LOC", "U-LOC"]


def _crf_pair(include_start_end: bool, constrained: bool, seed: int):
    torch.manual_seed(seed)
    constraints = allowed_transitions("BIOUL", dict(enumerate(BIOUL))) if constrained else None
    stock = ConditionalRandomField(len(BIOUL), constraints, include_start_end)
    with torch.no_grad():
        for parameter in stock.parameters():
            if parameter.requires_grad:  # not the constraint mask
                parameter.normal_(0, 2)
    batched = BatchedViterbiConditionalRandomField(len(BIOUL), None, include_start_end)
    batched.load_state_dict(stock.state_dict())
    return stock, batched


def _random_batch(seed: int, batch_size: int = 13, max_len: int = 11):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch_size, max_len, len(BIOUL), generator=generator) * 3
    lengths = torch.randint(1, max_len + 1, (batch_size,), generator=generator)
    lengths[0] = max_len
    mask = torch.arange(max_len).unsqueeze(0) < lengths.unsqueeze(1)
    return logits, mask


@pytest.mark.parametrize("include_start_end", [True, False])
@pytest.mark.parametrize("constrained", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_viterbi_gives_stock_paths_and_scores(include_start_end, constrained, seed):
    stock, batched = _crf_pair(include_start_end, constrained, seed)
    logits, mask = _random_batch(seed)
    expected = stock.viterbi_tags(logits, mask)
    got = batched.viterbi_tags(logits, mask)
    assert [path for path, _ in got] == [path for path, _ in expected]
    for (_, got_score), (_, want_score) in zip(got, expected):
        assert got_score == pytest.approx(want_score, abs=1e-3)


def test_top_k_format_matches_stock():
    stock, batched = _crf_pair(False, True, 5)
    logits, mask = _random_batch(5, batch_size=4)
    expected = stock.viterbi_tags(logits, mask, top_k=1)
    got = batched.viterbi_tags(logits, mask, top_k=1)
    assert [[path for path, _ in k] for k in got] == [[path for path, _ in k] for k in expected]
    # k > 1 is delegated to the stock decoder.
    assert batched.viterbi_tags(logits, mask, top_k=3) == stock.viterbi_tags(logits, mask, top_k=3)


def test_constrained_paths_are_valid_bioul():
    _, batched = _crf_pair(False, True, 7)
    logits, mask = _random_batch(7, batch_size=32, max_len=20)
    allowed = set(allowed_transitions("BIOUL", dict(enumerate(BIOUL))))
    for path, _ in batched.viterbi_tags(logits, mask):
        sequence = [len(BIOUL)] + path + [len(BIOUL) + 1]  # start and end sentinels
        assert all((a, b) in allowed for a, b in zip(sequence, sequence[1:]))


def test_decode_ignores_padding_and_handles_empty_rows():
    transitions = torch.zeros(3, 3)
    logits = torch.tensor([[[0.0, 5.0, 0.0], [9.0, 0.0, 0.0], [0.0, 0.0, 9.0]]]).repeat(2, 1, 1)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    paths, scores = viterbi_decode_batch(logits, mask, transitions)
    assert paths[0, :2].tolist() == [1, 0]
    assert scores.tolist() == [14.0, 0.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_device_backtrack_equals_the_host_one(seed, monkeypatch):
    # CUDA tensors are decoded with torch ops, CPU ones by `viterbi_decode_numpy`: the torch
    # path, run here on CPU, must give the same paths and scores.
    from ner_elmo.modules import viterbi

    _, batched = _crf_pair(True, True, seed)
    logits, mask = _random_batch(seed, batch_size=17, max_len=13)
    host = batched.viterbi_tags(logits, mask)
    monkeypatch.setattr(viterbi, "_runs_on_host", lambda tensor: False)
    assert batched.viterbi_tags(logits, mask) == host
