"""
The frozen-biLM activation cache: stores, keys, batch assembly (with a toy biLM, no files
needed) and, with the tiny ELMo fixture, the "ner_elmo" embedder's use of it.
"""
import copy
import logging
import os
import shutil

import h5py
import numpy
import pytest
import torch

from ner_elmo.modules.elmo_cache import (
    ENTRY_OVERHEAD_BYTES,
    DiskActivationStore,
    ElmoActivationCache,
    MemoryActivationStore,
    module_fingerprint,
    sentence_lengths,
)


NAMESPACE = "0123456789abcdef0123456789abcdef"
KEY = NAMESPACE + "/" + "fedcba9876543210fedcba9876543210fedcba98"


class ToyBiLm(torch.nn.Module):
    """
    A contextual stand-in for an ELMo biLM: layer 0 is a token embedding twice over (as in
    ELMo), layers 1 and 2 depend on the whole sentence.  Records the batch of every call.
    """

    def __init__(self, dim: int = 6) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.token = torch.nn.Parameter(torch.randn(50, dim // 2, generator=generator), requires_grad=False)
        self.calls = []

    def get_output_dim(self) -> int:
        return 2 * self.token.size(1)

    def forward(self, char_ids):
        self.calls.append(char_ids.clone())
        lengths = torch.as_tensor(sentence_lengths(char_ids))
        batch, timesteps = char_ids.shape[:2]
        mask = torch.arange(timesteps + 2).unsqueeze(0) < (lengths + 2).unsqueeze(1)
        token = torch.zeros(batch, timesteps + 2, self.token.size(1))
        token[:, 1 : timesteps + 1] = torch.tanh(char_ids.float() / 100.0) @ self.token
        token[:, 0] = 0.5
        token[torch.arange(batch), lengths + 1] = -0.5
        layer0 = torch.cat([token, token], dim=-1) * mask.unsqueeze(-1)
        layer1 = torch.cumsum(layer0, dim=1) * mask.unsqueeze(-1)
        layer2 = torch.flip(torch.cumsum(torch.flip(layer0, [1]), dim=1), [1]) * mask.unsqueeze(-1)
        return {"activations": [layer0, layer1, layer2], "mask": mask}


def char_ids_of(lengths, seed=0, timesteps=None):
    """A right-padded batch of random character ids with the given sentence lengths."""
    generator = torch.Generator().manual_seed(seed)
    timesteps = timesteps or max(lengths)
    ids = torch.zeros(len(lengths), timesteps, 50, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(1, 262, (length, 50), generator=generator)
    return ids


def toy_cache(store=None, layers=(0, 1, 2), dtype="float32"):
    bilm = ToyBiLm()
    cache = ElmoActivationCache(store if store is not None else MemoryActivationStore(2**20), bilm.get_output_dim(), layers, dtype)
    return bilm, cache, module_fingerprint(bilm, "toy")


# Stores.


def test_memory_store_returns_the_stored_array_read_only():
    store = MemoryActivationStore(2**20)
    entry = numpy.arange(12, dtype=numpy.float16).reshape(3, 4)
    store.put(KEY, entry)
    found = store.get(KEY)
    assert found is entry and found.dtype == numpy.float16
    assert not found.flags.writeable
    assert store.nbytes == entry.nbytes + ENTRY_OVERHEAD_BYTES
    assert store.get(NAMESPACE + "/" + "0" * 40) is None


def test_memory_store_evicts_least_recently_used_within_its_bound():
    entry_bytes = 100 * 4 + ENTRY_OVERHEAD_BYTES
    store = MemoryActivationStore(3 * entry_bytes)
    keys = [NAMESPACE + "/" + f"{i:040x}" for i in range(5)]
    for key in keys[:3]:
        store.put(key, numpy.zeros(100, numpy.float32))
    store.get(keys[0])  # now the most recently used
    store.put(keys[3], numpy.zeros(100, numpy.float32))
    assert keys[1] not in store and keys[0] in store and keys[2] in store and keys[3] in store
    assert store.evictions == 1 and store.nbytes == 3 * entry_bytes
    # An entry bigger than the whole bound is not kept and evicts nothing.
    store.put(keys[4], numpy.zeros(1000, numpy.float32))
    assert keys[4] not in store and len(store) == 3


def test_disk_store_round_trips_exactly_and_atomically(tmp_path):
    store = DiskActivationStore(tmp_path)
    entry = numpy.random.RandomState(0).randn(5, 7).astype(numpy.float32)
    store.put(KEY, entry)
    path = tmp_path / NAMESPACE / (KEY.split("/")[1] + ".npy")
    assert store.path(KEY) == path and path.is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left
    found = DiskActivationStore(tmp_path).get(KEY)
    assert found.dtype == numpy.float32 and numpy.array_equal(found, entry)


def test_disk_store_treats_an_unreadable_entry_as_a_miss(tmp_path, caplog):
    store = DiskActivationStore(tmp_path)
    store.put(KEY, numpy.zeros((2, 2), numpy.float32))
    store.path(KEY).write_bytes(b"not a numpy file")
    with caplog.at_level(logging.WARNING):
        assert store.get(KEY) is None
    assert "unreadable entry" in caplog.text


def test_stores_reject_keys_that_are_not_cache_keys(tmp_path):
    with pytest.raises(ValueError, match="not an activation cache key"):
        DiskActivationStore(tmp_path).put("../../etc/passwd", numpy.zeros(1))
    with pytest.raises(ValueError, match="not an activation cache key"):
        MemoryActivationStore(100).put("abc", numpy.zeros(1))


# Keys.


def test_sentence_lengths_and_right_padding_check():
    ids = char_ids_of([3, 1, 2], timesteps=4)
    assert sentence_lengths(ids).tolist() == [3, 1, 2]
    ids[0, 1] = 0
    with pytest.raises(ValueError, match=r"batch rows \[0\].*padding must come after"):
        sentence_lengths(ids)


def test_fingerprint_changes_with_any_weight_value_and_with_extras():
    bilm = ToyBiLm()
    original = module_fingerprint(bilm, "options")
    assert module_fingerprint(bilm, "options") == original
    assert module_fingerprint(bilm, "other options") != original
    with torch.no_grad():
        bilm.token[3, 1] += 1e-6
    assert module_fingerprint(bilm, "options") != original


# Assembly.


def test_cached_batch_equals_the_bilm_output_exactly_on_miss_and_hit():
    bilm, cache, fingerprint = toy_cache()
    ids = char_ids_of([4, 2, 3], timesteps=5)
    expected = ToyBiLm()(ids)
    for _ in range(2):
        output = cache.activations(ids, bilm, fingerprint)
        assert torch.equal(output["mask"], expected["mask"])
        for got, want in zip(output["activations"], expected["activations"]):
            assert got.shape == (3, 7, 6) and got.dtype == torch.float32
            assert torch.equal(got, want)
    assert (cache.misses, cache.hits, len(bilm.calls)) == (3, 3, 1)


def test_only_distinct_misses_run_as_one_trimmed_sub_batch():
    bilm, cache, fingerprint = toy_cache()
    cache.activations(char_ids_of([2, 3], seed=1), bilm, fingerprint)
    ids = torch.zeros(4, 6, 50, dtype=torch.long)
    ids[0, :2] = char_ids_of([2, 3], seed=1)[0, :2]  # seen before
    new = char_ids_of([4], seed=2)[0]
    ids[1, :4] = new
    ids[3, :4] = new  # the same new sentence twice
    ids[2, :1] = char_ids_of([1], seed=3)[0]
    output = cache.activations(ids, bilm, fingerprint)
    assert len(bilm.calls) == 2
    assert bilm.calls[1].shape == (2, 4, 50)  # the two distinct new sentences, 4 timesteps
    assert (cache.misses, cache.hits) == (2 + 2, 2)
    assert torch.equal(output["activations"][2][1], output["activations"][2][3])
    assert torch.equal(output["mask"].sum(dim=1), torch.tensor([4, 6, 3, 6]))


def test_sentence_activations_do_not_depend_on_the_rest_of_the_batch():
    bilm, cache, fingerprint = toy_cache()
    ids = char_ids_of([5, 2, 3], timesteps=6)
    together = cache.activations(ids, bilm, fingerprint)
    _, fresh_cache, _ = toy_cache()
    alone = fresh_cache.activations(ids[1:2, :2], bilm, fingerprint)
    for in_batch, by_itself in zip(together["activations"], alone["activations"]):
        assert torch.equal(in_batch[1, :4], by_itself[0])
        assert torch.all(in_batch[1, 4:] == 0)


def test_layer_zero_is_stored_once_and_single_layers_alone():
    store = MemoryActivationStore(2**20)
    bilm, cache, fingerprint = toy_cache(store)
    cache.activations(char_ids_of([3]), bilm, fingerprint)
    (entry,) = store._entries.values()
    assert entry.shape == (5, 3 + 6 + 6)
    single_store = MemoryActivationStore(2**20)
    _, single, _ = toy_cache(single_store, layers=(2,))
    output = single.activations(char_ids_of([3]), bilm, fingerprint)
    (entry,) = single_store._entries.values()
    assert entry.shape == (5, 6) and len(output["activations"]) == 1
    assert torch.equal(output["activations"][0], ToyBiLm()(char_ids_of([3]))["activations"][2])


def test_namespace_separates_weights_layers_and_dtypes():
    bilm, cache, fingerprint = toy_cache()
    _, other_layers, _ = toy_cache(layers=(1,))
    _, other_dtype, _ = toy_cache(dtype="float16")
    namespaces = {
        cache.namespace(fingerprint),
        cache.namespace(module_fingerprint(bilm, "other options")),
        other_layers.namespace(fingerprint),
        other_dtype.namespace(fingerprint),
    }
    assert len(namespaces) == 4


def test_float16_entries_halve_memory_and_round_within_half_precision():
    store = MemoryActivationStore(2**20)
    bilm, cache, fingerprint = toy_cache(store, dtype="float16")
    ids = char_ids_of([6, 4])
    output = cache.activations(ids, bilm, fingerprint)
    expected = ToyBiLm()(ids)
    assert all(entry.dtype == numpy.float16 for entry in store._entries.values())
    for got, want in zip(output["activations"], expected["activations"]):
        assert got.dtype == torch.float32
        error = (got - want).abs()
        assert torch.all(error <= want.abs() * 2.0**-11 + 1e-7)
        assert error.max() > 0  # float16 really rounds
    # A hit reads exactly what the miss returned.
    again = cache.activations(ids, bilm, fingerprint)
    assert all(torch.equal(a, b) for a, b in zip(output["activations"], again["activations"]))


def test_float16_keeps_an_entry_that_would_overflow_in_float32():
    bilm, cache, fingerprint = toy_cache(dtype="float16")
    with torch.no_grad():
        bilm.token.mul_(1e5)
    ids = char_ids_of([3])
    output = cache.activations(ids, bilm, fingerprint)
    (entry,) = cache.store._entries.values()
    assert entry.dtype == numpy.float32
    assert torch.equal(output["activations"][1], bilm(ids)["activations"][1])


def test_a_copied_model_shares_the_cache_and_a_pickled_one_starts_empty():
    import pickle

    bilm, cache, fingerprint = toy_cache()
    cache.activations(char_ids_of([3]), bilm, fingerprint)
    assert copy.deepcopy(cache) is cache
    unpickled = pickle.loads(pickle.dumps(cache))
    assert len(unpickled.store) == 0 and unpickled.store.max_bytes == cache.store.max_bytes


# The "ner_elmo" embedder with the tiny ELMo fixture.




SENTENCES = [
    ["Mirela", "flew", "to", "Tromso", "."],
    ["Quiet", "harbours"],
    ["The", "Kestrel", "Union", "met", "in", "Lodz", "today", "."],
]


def embedder(options, weights, **kwargs):
    from ner_elmo.modules.token_embedders.ner_elmo import NerElmoTokenEmbedder

    kwargs.setdefault("implementation", "stock")
    kwargs.setdefault("dropout", 0.0)
    return NerElmoTokenEmbedder(options, weights, **kwargs)


def elmo_ids(sentences):
    from allennlp.modules.elmo import batch_to_ids

    return batch_to_ids(sentences)


def test_embedder_hit_returns_identical_embeddings(elmo_files):
    ids = elmo_ids(SENTENCES)
    uncached = embedder(*elmo_files, cache="none").eval()(ids)
    cached = embedder(*elmo_files, cache="memory").eval()
    first, second = cached(ids), cached(ids)
    assert (cached.activation_cache.misses, cached.activation_cache.hits) == (3, 3)
    assert torch.equal(first, second)
    assert (first - uncached).abs().max().item() < 1e-6


def test_embedder_cache_is_exact_in_train_mode_too(elmo_files):
    ids = elmo_ids(SENTENCES)
    uncached = embedder(*elmo_files, cache="none", dropout=0.5).train()
    cached = embedder(*elmo_files, cache="memory", dropout=0.5).train()
    cached(ids)  # fill the cache
    torch.manual_seed(7)
    with_cache = cached(ids)
    torch.manual_seed(7)
    without_cache = uncached(ids)
    assert cached.activation_cache.hits == 3
    assert (with_cache == 0).any()  # dropout is on
    assert (with_cache - without_cache).abs().max().item() < 1e-6


def test_disk_cache_survives_a_new_embedder(elmo_files, tmp_path):
    ids = elmo_ids(SENTENCES)
    first = embedder(*elmo_files, cache="disk", cache_dir=str(tmp_path)).eval()
    expected = first(ids)
    files = sorted(tmp_path.glob("*/*.npy"))
    assert len(files) == 3 and not list(tmp_path.glob("*/.*"))
    second = embedder(*elmo_files, cache="disk", cache_dir=str(tmp_path)).eval()
    assert torch.equal(second(ids), expected)
    assert (second.activation_cache.misses, second.activation_cache.hits) == (0, 3)


def test_changed_weight_file_at_the_same_path_and_date_misses(elmo_files, tmp_path):
    options, weights = elmo_files
    copied = tmp_path / "weights.hdf5"
    shutil.copyfile(weights, copied)
    cache_dir = tmp_path / "cache"
    ids = elmo_ids(SENTENCES)
    before = embedder(options, str(copied), cache="disk", cache_dir=str(cache_dir)).eval()(ids)

    stat = os.stat(copied)
    with h5py.File(copied, "r+") as hdf5:
        hdf5["CNN_proj/b_proj"][0] += 0.25
    os.utime(copied, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(copied).st_size == stat.st_size

    changed = embedder(options, str(copied), cache="disk", cache_dir=str(cache_dir)).eval()
    after = changed(ids)
    assert (changed.activation_cache.misses, changed.activation_cache.hits) == (3, 0)
    assert (after - before).abs().max().item() > 1e-3
    uncached = embedder(options, str(copied), cache="none").eval()(ids)
    assert (after - uncached).abs().max().item() < 1e-6


def test_loading_other_weights_into_the_embedder_misses(elmo_files):
    ids = elmo_ids(SENTENCES)
    model = embedder(*elmo_files, cache="memory").eval()
    before = model(ids)
    state = copy.deepcopy(model.state_dict())
    key = next(name for name in state if name.startswith("_bilm.") and state[name].dim() == 2)
    state[key] += 0.1
    model.load_state_dict(state)
    after = model(ids)
    assert (model.activation_cache.misses, model.activation_cache.hits) == (6, 0)
    assert (after - before).abs().max().item() > 1e-4


def test_weights_changed_in_place_miss(elmo_files):
    ids = elmo_ids(SENTENCES)
    model = embedder(*elmo_files, cache="memory").eval()
    uncached = embedder(*elmo_files, cache="none").eval()
    before = model(ids)
    with torch.no_grad():
        next(model._bilm.parameters()).mul_(1.5)
        next(uncached._bilm.parameters()).mul_(1.5)
    after = model(ids)
    assert (model.activation_cache.misses, model.activation_cache.hits) == (6, 0)
    assert (after - before).abs().max().item() > 1e-4
    assert (after - uncached(ids)).abs().max().item() < 1e-6


def test_memory_bound_is_respected_and_evicted_sentences_recomputed(elmo_files):
    unbounded = embedder(*elmo_files, cache="memory").eval()
    unbounded(elmo_ids(SENTENCES))
    largest = max(entry.nbytes for entry in unbounded.activation_cache.store._entries.values())
    bound = largest + ENTRY_OVERHEAD_BYTES + 64  # room for the longest sentence only
    model = embedder(*elmo_files, cache="memory", cache_max_megabytes=bound / 2**20).eval()
    store = model.activation_cache.store
    for sentence in SENTENCES:
        model(elmo_ids([sentence]))
        assert 0 < store.nbytes <= store.max_bytes
    assert store.evictions >= 1 and len(store) < 3
    output = model(elmo_ids(SENTENCES[:1]))  # the first sentence was evicted
    assert model.activation_cache.misses == 4
    expected = embedder(*elmo_files, cache="none").eval()(elmo_ids(SENTENCES[:1]))
    assert (output - expected).abs().max().item() < 1e-6
