"""
FastElmoBiLm against allennlp's stock `_ElmoBiLm`, on the tiny fixture ELMo
(fixtures/elmo, made by `weights_io.write_random_elmo` with seed 0; its cell_clip and
proj_clip both bite), and a full-size check marked slow.
"""
import random

import pytest
import torch
from allennlp.modules import elmo as allennlp_elmo

from ner_elmo.modules.elmo import FastElmoBiLm, batch_to_char_ids, token_to_char_ids
from ner_elmo.modules.elmo import lstm as lstm_module
from ner_elmo.modules.elmo import step_products as step_products_module
from ner_elmo.modules.elmo.packing import pack_by_length
from ner_elmo.modules.elmo.bilm import BATCH_TOLERANCE
from ner_elmo.modules.elmo.step_products import int8_step_products_available, onednn_packing_available
from ner_elmo.modules.elmo.weights_io import read_options, write_random_elmo

TOLERANCE = 1e-4

WORDS = (
    "the a of Paris Zürich Москва 東京 , . ; -- New York Times rallied 1999 3.5% U.S. "
    "O'Neill e-mail naïve supercalifragilisticexpialidocious".split()
)


def _sentences(seed, lengths):
    rng = random.Random(seed)
    return [[rng.choice(WORDS) for _ in range(length)] for length in lengths]


@pytest.fixture(scope="module")
def elmo_files(fixtures_dir):
    directory = fixtures_dir / "elmo"
    return str(directory / "options.json"), str(directory / "lm_weights.hdf5")


@pytest.fixture(scope="module")
def stock_elmo():
    return allennlp_elmo


@pytest.fixture(scope="module")
def stock(elmo_files, stock_elmo):
    return stock_elmo._ElmoBiLm(*elmo_files)


@pytest.fixture()
def fast(elmo_files):
    return FastElmoBiLm(*elmo_files)


def _run_stock(stock, char_ids):
    # allennlp's ElmoLstm is stateful: start it from zeros as a fresh one would.
    stock._elmo_lstm.reset_states()
    with torch.no_grad():
        return stock(char_ids)


def _max_differences(expected, actual):
    return [(e - a).abs().max().item() for e, a in zip(expected["activations"], actual["activations"])]


# Character ids


def test_char_ids_equal_allennlp_batch_to_ids(stock_elmo):
    sentences = [
        ["Hello", "wörld", "東京", "", "<S>", "</S>"],
        ["x" * 60, "é" * 30],  # cut to 48 bytes, the second in the middle of a character
        ["a"],
        ["\ud800bad", "tab\there"],  # an unencodable surrogate is dropped
    ]
    assert torch.equal(batch_to_char_ids(sentences), stock_elmo.batch_to_ids(sentences))


def test_char_ids_of_a_word(stock_elmo):
    ids = token_to_char_ids("ab")
    assert ids[:4] == [259, 98, 99, 260]
    assert ids[4:] == [261] * 46
    mapper = stock_elmo.ELMoCharacterMapper(tokens_to_add={"<UNK>": 3})
    assert token_to_char_ids("<UNK>", {"<UNK>": 3}) == mapper.convert_word_to_char_ids("<UNK>")


def test_char_ids_pad_with_zero_rows():
    ids = batch_to_char_ids([["a", "b", "c"], ["d"]])
    assert ids.shape == (2, 3, 50)
    assert ids[1, 1:].eq(0).all()
    assert ids[1, 0].gt(0).all()


# Equivalence with the stock biLM


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_layer_matches_stock(stock, fast, seed):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 14) for _ in range(rng.randint(1, 6))]
    char_ids = batch_to_char_ids(_sentences(seed, lengths))
    expected = _run_stock(stock, char_ids)
    with torch.no_grad():
        actual = fast(char_ids)
    assert torch.equal(actual["mask"], expected["mask"])
    assert len(actual["activations"]) == 3 == fast.num_layers
    for layer, (e, a) in enumerate(zip(expected["activations"], actual["activations"])):
        assert a.shape == e.shape == (len(lengths), max(lengths) + 2, 32)
        assert (e - a).abs().max().item() <= TOLERANCE, f"layer {layer}"
    assert fast.get_output_dim() == stock.get_output_dim() == 32


def test_matches_stock_with_an_empty_sentence_and_extra_padding(stock, fast):
    # An empty sentence still gets <S> and </S>; a batch padded past its longest sentence
    # keeps its width, zeros at the end.
    char_ids = torch.cat([batch_to_char_ids(_sentences(3, [4, 0, 2])), torch.zeros(3, 2, 50, dtype=torch.long)], 1)
    expected = _run_stock(stock, char_ids)
    with torch.no_grad():
        actual = fast(char_ids)
    assert actual["mask"].sum(dim=1).tolist() == [6, 2, 4]
    assert torch.equal(actual["mask"], expected["mask"])
    assert max(_max_differences(expected, actual)) <= TOLERANCE
    assert actual["activations"][2][:, 6:].eq(0).all()


def test_an_empty_batch_gives_empty_activations(fast):
    with torch.no_grad():
        output = fast(torch.zeros(0, 4, 50, dtype=torch.long))
    assert [a.shape for a in output["activations"]] == [(0, 6, 32)] * 3
    assert output["mask"].shape == (0, 6)


def test_clipping_is_exercised(stock, fast):
    char_ids = batch_to_char_ids(_sentences(4, [12, 9, 5]))
    with torch.no_grad():
        clipped = fast(char_ids)
        # The first LSTM layer has no residual: its outputs reach proj_clip exactly.
        first_lstm = clipped["activations"][1][clipped["mask"]]
        assert first_lstm.abs().max().item() == 0.5
        assert (first_lstm.abs() == 0.5).sum().item() > 10
        # Turning the memory-cell clip off changes the numbers: it was active.
        fast.lstm.cell_clip = 0.0
        unclipped = fast(char_ids)
    assert max(_max_differences(clipped, unclipped)[1:]) > 1e-2
    assert max(_max_differences(_run_stock(stock, char_ids), clipped)) <= TOLERANCE


def test_gradients_match_stock_when_fine_tuning(elmo_files, stock_elmo):
    stock = stock_elmo._ElmoBiLm(*elmo_files, requires_grad=True)
    fast = FastElmoBiLm(*elmo_files, requires_grad=True)
    char_ids = batch_to_char_ids(_sentences(5, [6, 3]))
    generator = torch.Generator().manual_seed(0)
    stock_output = stock(char_ids)
    weights = [torch.randn(a.shape, generator=generator) for a in stock_output["activations"]]
    sum((a * w).sum() for a, w in zip(stock_output["activations"], weights)).backward()
    sum((a * w).sum() for a, w in zip(fast(char_ids)["activations"], weights)).backward()
    torch.testing.assert_close(
        fast.char_cnn.char_embedding.grad,
        stock._token_embedder._char_embedding_weights.grad,
        rtol=1e-4,
        atol=1e-4,
    )
    torch.testing.assert_close(
        fast.lstm.projection_weights[1].grad[0],  # layer 1, forward
        stock._elmo_lstm.forward_layer_1.state_projection.weight.grad.t(),
        rtol=1e-4,
        atol=1e-5,
    )
    assert len(fast.char_cache) == 0


def test_allennlp_elmo_runs_on_our_module(elmo_files, stock_elmo):
    char_ids = batch_to_char_ids(_sentences(6, [5, 2, 7]))
    stock = stock_elmo.Elmo(*elmo_files, num_output_representations=1, dropout=0.0)
    ours = stock_elmo.Elmo(None, None, num_output_representations=1, dropout=0.0, module=FastElmoBiLm(*elmo_files))
    with torch.no_grad():
        expected = stock(char_ids)
        actual = ours(char_ids)
    assert torch.equal(actual["mask"], expected["mask"])
    torch.testing.assert_close(
        actual["elmo_representations"][0], expected["elmo_representations"][0], rtol=0, atol=TOLERANCE
    )


# Statelessness and batch independence


def test_repeated_calls_give_identical_outputs(fast):
    char_ids = batch_to_char_ids(_sentences(7, [8, 3]))
    with torch.no_grad():
        first = fast(char_ids)
        second = fast(char_ids)
    for a, b in zip(first["activations"], second["activations"]):
        assert torch.equal(a, b)


def test_a_sentence_gets_the_same_numbers_alone_and_in_a_batch(fast):
    sentences = _sentences(8, [9, 1, 13, 4, 6])
    with torch.no_grad():
        batch = fast(batch_to_char_ids(sentences))
        for row, sentence in enumerate(sentences):
            alone = fast(batch_to_char_ids([sentence]))
            width = len(sentence) + 2
            for layer, (b, a) in enumerate(zip(batch["activations"], alone["activations"])):
                # Equal up to float rounding of matrix products of different sizes.
                torch.testing.assert_close(b[row, :width], a[0], rtol=0, atol=1e-6, msg=f"layer {layer}")
                assert b[row, width:].eq(0).all()


def test_first_layer_products_per_distinct_word_give_the_same_numbers(fast, monkeypatch):
    # Repeated words: the first layer's input products are computed once per distinct word.
    char_ids = batch_to_char_ids([["the", "cat", "the", "dog", "the"], ["the", "end"]])
    rows = 7 + 4
    assert fast.lstm._worth_deduplicating(6, rows)  # <S>, </S>, the, cat, dog, end
    with torch.no_grad():
        per_distinct = fast(char_ids)
        monkeypatch.setattr(lstm_module, "DISTINCT_PRODUCTS_MAX_BYTES", 0)
        assert not fast.lstm._worth_deduplicating(6, rows)
        per_position = fast(char_ids)
    assert max(_max_differences(per_distinct, per_position)) <= 1e-6


def test_onednn_packed_step_products_give_the_same_numbers(elmo_files, fast, monkeypatch):
    if not onednn_packing_available():
        pytest.skip("PyTorch's oneDNN packed linear ops are missing here: nothing to compare")
    # Used for large weights only: make the fixture's count.
    monkeypatch.setattr(lstm_module, "ONEDNN_MIN_WEIGHT_ELEMENTS", 0)
    char_ids = batch_to_char_ids(_sentences(11, [8, 5, 2]))
    with torch.no_grad():
        packed = fast(char_ids)
        plain = FastElmoBiLm(*elmo_files, onednn_packed_weights=False)(char_ids)
    assert len(fast.lstm._packed_step_products) == 2  # one per layer
    assert max(_max_differences(plain, packed)) <= 1e-6


def _missing_op(*args, **kwargs):
    raise RuntimeError("No such operator (simulated)")


def test_without_onednn_packed_ops_the_plain_products_run(elmo_files, monkeypatch):
    monkeypatch.setattr(step_products_module, "_onednn_checked", None)
    monkeypatch.setattr(step_products_module, "_pack", _missing_op)
    monkeypatch.setattr(lstm_module, "ONEDNN_MIN_WEIGHT_ELEMENTS", 0)
    assert not onednn_packing_available()
    char_ids = batch_to_char_ids(_sentences(11, [8, 5, 2]))
    fallback = FastElmoBiLm(*elmo_files)
    with torch.no_grad():
        got = fallback(char_ids)
        plain = FastElmoBiLm(*elmo_files, onednn_packed_weights=False)(char_ids)
    assert fallback.lstm._packed_step_products == {}
    assert all(torch.equal(a, b) for a, b in zip(got["activations"], plain["activations"]))


def test_without_int8_ops_int8_falls_back_to_float32_with_a_warning(elmo_files, monkeypatch, caplog):
    monkeypatch.setattr(step_products_module, "_int8_checked", None)
    monkeypatch.setattr(step_products_module, "_pack_int8", _missing_op)
    assert not int8_step_products_available()
    char_ids = batch_to_char_ids(_sentences(12, [7, 3]))
    with caplog.at_level("WARNING"), torch.no_grad():
        got = FastElmoBiLm(*elmo_files, dtype="int8")(char_ids)
        plain = FastElmoBiLm(*elmo_files)(char_ids)
    assert "int8 products are not available in this PyTorch" in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(got["activations"], plain["activations"]))


def test_unfreezing_drops_the_cached_and_packed_copies(fast, monkeypatch):
    monkeypatch.setattr(lstm_module, "ONEDNN_MIN_WEIGHT_ELEMENTS", 0)
    char_ids = batch_to_char_ids([["Paris", "again"]])
    with torch.no_grad():
        fast(char_ids)
    assert len(fast.char_cache) == 4
    assert len(fast.lstm._packed_step_products) == (2 if onednn_packing_available() else 0)
    fast.requires_grad_(True)
    fast(char_ids)
    assert len(fast.char_cache) == 0
    assert fast.lstm._packed_step_products == {}


def test_packed_layout_runs_the_backward_direction_from_each_end():
    layout = pack_by_length(torch.tensor([2, 4, 3]), timesteps=5)
    assert layout.batch_sizes == [3, 3, 2, 1]
    # Step 0: sequences by length (1, 2, 0); forward starts at 0, backward at the last token.
    assert layout.forward_index[:3].tolist() == [5, 10, 0]
    assert layout.backward_index[:3].tolist() == [5 + 3, 10 + 2, 0 + 1]
    assert layout.forward_index[-1].tolist() == 5 + 3
    assert layout.backward_index[-1].tolist() == 5 + 0


# The character cache


def test_char_cache_hit_gives_the_same_numbers(fast, elmo_files):
    char_ids = batch_to_char_ids(_sentences(9, [7, 7, 3]))
    with torch.no_grad():
        cold = fast(char_ids)
        misses = fast.char_cache.misses
        assert misses == len(fast.char_cache) > 0
        warm = fast(char_ids)
        uncached = FastElmoBiLm(*elmo_files, char_cache_size=0)(char_ids)
    assert fast.char_cache.misses == misses
    assert fast.char_cache.hits >= misses
    for a, b, c in zip(cold["activations"], warm["activations"], uncached["activations"]):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=0, atol=1e-6)


def test_char_cache_stays_within_its_size(elmo_files):
    fast = FastElmoBiLm(*elmo_files, char_cache_size=6)
    reference = FastElmoBiLm(*elmo_files, char_cache_size=0)
    with torch.no_grad():
        for seed in range(4):
            # More distinct words than the cache holds.
            char_ids = batch_to_char_ids(_sentences(seed, [10, 4]))
            expected = reference(char_ids)
            actual = fast(char_ids)
            assert len(fast.char_cache) == 6
            assert max(_max_differences(expected, actual)) <= 1e-6


def test_char_cache_evicts_the_least_recently_used_word(elmo_files):
    fast = FastElmoBiLm(*elmo_files, char_cache_size=4)
    cache = fast.char_cache

    def run(word):
        misses = cache.misses
        with torch.no_grad():
            fast(batch_to_char_ids([[word]]))
        return cache.misses - misses

    assert run("Paris") == 3  # <S>, Paris, </S>
    assert run("York") == 1
    assert run("Times") == 1  # evicts Paris, the least recently used
    assert run("York") == 0
    assert run("Paris") == 1
    assert len(cache) == 4


def test_a_cached_word_is_the_same_whichever_batch_first_met_it(elmo_files):
    # Up to round-off (the CNN's products round by batch shape and CPU kernels): a resumed run,
    # which fills its cache from other batches than the uninterrupted one, stays within it.
    rng = random.Random(3)
    words = list(dict.fromkeys("".join(rng.choice("abcdéfghijkl") for _ in range(rng.randint(1, 12))) for _ in range(120)))
    words = words[:100]
    assert len(words) == 100
    embeddings = []
    for order in range(3):
        shuffled = words[:]
        random.Random(order).shuffle(shuffled)
        fast = FastElmoBiLm(*elmo_files)
        with torch.no_grad():
            for start in range(0, len(shuffled), 37):
                fast(batch_to_char_ids([shuffled[start : start + 37]]))
            distinct, inverse = fast.char_cache.embed_distinct(batch_to_char_ids([words])[0], fast.char_cnn)
        assert fast.char_cache.misses == len(words) + 2  # each word once, and <S>, </S>
        embeddings.append(distinct.index_select(0, inverse))
    tolerance = BATCH_TOLERANCE * embeddings[0].abs().max().item()
    for other in embeddings[1:]:
        assert (embeddings[0] - other).abs().max().item() <= tolerance


def test_vocab_to_cache_fills_the_cache(elmo_files):
    fast = FastElmoBiLm(*elmo_files, vocab_to_cache=["Paris", "Zürich", "Paris"])
    assert len(fast.char_cache) == 2
    with torch.no_grad():
        fast(batch_to_char_ids([["Paris", "Zürich"]]))
    assert fast.char_cache.hits == 2


def test_moving_the_module_clears_the_cache(fast):
    with torch.no_grad():
        fast(batch_to_char_ids([["Paris"]]))
    assert len(fast.char_cache) == 3
    fast.to(torch.float32)
    assert len(fast.char_cache) == 0


# Reduced precision


@pytest.mark.parametrize("dtype,tolerance", [("bfloat16", 2e-2), ("float16", 2e-3), ("int8", 3e-2)])
def test_reduced_precision_stays_within_its_documented_tolerance(elmo_files, fast, dtype, tolerance):
    if dtype == "int8" and not int8_step_products_available():
        pytest.skip("no fbgemm quantized ops in this PyTorch")
    char_ids = batch_to_char_ids(_sentences(10, [9, 4, 6]))
    with torch.no_grad():
        exact = fast(char_ids)
        reduced = FastElmoBiLm(*elmo_files, dtype=dtype)(char_ids)
    differences = _max_differences(exact, reduced)
    assert differences[0] == 0.0  # the character CNN stays float32
    assert 0.0 < max(differences) <= tolerance
    assert all(a.dtype == torch.float32 for a in reduced["activations"])


def test_rejects_an_unknown_dtype(elmo_files):
    with pytest.raises(ValueError, match="dtype must be one of"):
        FastElmoBiLm(*elmo_files, dtype="float64")


def test_int8_products_need_a_frozen_biLM(elmo_files):
    trainable = FastElmoBiLm(*elmo_files, dtype="int8", requires_grad=True)
    with pytest.raises(ValueError, match=r"int8 products need a frozen biLM \(requires_grad false\)"):
        trainable(batch_to_char_ids([["Paris"]]))


# Full size


@pytest.mark.slow
def test_full_size_random_elmo_matches_stock(shared_dir, tmp_path, stock_elmo):
    options_path = shared_dir / "elmo" / "architectures" / "elmo_2x4096_512_2048cnn_2xhighway_options.json"
    if not options_path.exists():
        pytest.skip(f"{options_path} is absent")
    files = (str(tmp_path / "options.json"), str(tmp_path / "lm_weights.hdf5"))
    write_random_elmo(read_options(options_path), *files, seed=0)
    char_ids = batch_to_char_ids([["The", "fast", "one", "."], ["Same", "numbers"]])
    stock = stock_elmo._ElmoBiLm(*files)
    expected = _run_stock(stock, char_ids)
    del stock
    with torch.no_grad():
        actual = FastElmoBiLm(*files)(char_ids)
    assert torch.equal(actual["mask"], expected["mask"])
    assert actual["activations"][1].shape == (2, 6, 1024)
    assert max(_max_differences(expected, actual)) <= TOLERANCE
