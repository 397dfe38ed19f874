"""
The "ner_elmo" token embedder with the tiny ELMo fixture (fixtures/elmo): shapes per output
layer, agreement with allennlp's "elmo_token_embedder" and biLM, statelessness, caching and
training behaviour.
"""
import importlib.util

import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.modules.elmo import _ElmoBiLm, batch_to_ids
from allennlp.modules.token_embedders import ElmoTokenEmbedder, TokenEmbedder
from allennlp.nn.util import remove_sentence_boundaries

from ner_elmo.modules.elmo.bilm import BATCH_TOLERANCE
from ner_elmo.modules.token_embedders.ner_elmo import NerElmoTokenEmbedder

HAS_FAST_BILM = importlib.util.find_spec("ner_elmo.modules.elmo.bilm") is not None

SENTENCES = [
    ["Orla", "Brennick", "joined", "Vantor", "Labs", "in", "Galway", "."],
    ["Rain", "again"],
    ["The", "ferry", "to", "Inishmore", "left", "late", "."],
    ["Yes"],
]
LAYERS = {"word_emb": 0, "lstm_outputs1": 1, "lstm_outputs2": 2}




@pytest.fixture(scope="module")
def stock_layers(elmo_files):
    """allennlp's biLM on SENTENCES, fresh (no carried-over state): each layer without marks."""
    output = _ElmoBiLm(*elmo_files)(batch_to_ids(SENTENCES))
    return [remove_sentence_boundaries(layer, output["mask"])[0].detach() for layer in output["activations"]]


def make(elmo_files, **kwargs):
    kwargs.setdefault("implementation", "stock")
    kwargs.setdefault("dropout", 0.0)
    return NerElmoTokenEmbedder(*elmo_files, **kwargs)


@pytest.mark.parametrize("output_layer", ["elmo", "word_emb", "lstm_outputs1", "lstm_outputs2"])
@pytest.mark.parametrize("cache", ["none", "memory"])
def test_each_output_layer_has_the_biLM_output_size_and_zero_padding(elmo_files, stock_layers, output_layer, cache):
    model = make(elmo_files, output_layer=output_layer, cache=cache).eval()
    output = model(batch_to_ids(SENTENCES))
    dim = stock_layers[0].size(-1)
    assert model.get_output_dim() == dim
    assert output.shape == (4, 8, dim)
    assert torch.all(output[1, 2:] == 0) and torch.all(output[3, 1:] == 0)
    if output_layer in LAYERS:
        assert (output - stock_layers[LAYERS[output_layer]]).abs().max().item() < 1e-6
    if output_layer == "word_emb":
        assert torch.equal(output[..., : dim // 2], output[..., dim // 2 :])


def test_elmo_mix_matches_allennlp_elmo_token_embedder(elmo_files):
    ids = batch_to_ids(SENTENCES)
    mix = [0.5, -1.0, 2.0]
    ours = make(elmo_files, scalar_mix_parameters=mix, do_layer_norm=True).eval()
    stock = ElmoTokenEmbedder(*elmo_files, dropout=0.0, scalar_mix_parameters=mix, do_layer_norm=True).eval()
    assert (ours(ids) - stock(ids)).abs().max().item() < 1e-6


def test_stock_implementation_is_stateless_unlike_allennlp(elmo_files):
    ids = batch_to_ids(SENTENCES)
    ours = make(elmo_files, cache="none").eval()
    assert torch.equal(ours(ids), ours(ids))
    stock = ElmoTokenEmbedder(*elmo_files, dropout=0.0).eval()
    first, second = stock(ids), stock(ids)
    assert (first - second).abs().max().item() > 1e-3  # allennlp carries LSTM states over


@pytest.mark.skipif(not HAS_FAST_BILM, reason="ner_elmo.modules.elmo.bilm (FastElmoBiLm) is not there yet")
@pytest.mark.parametrize("output_layer", ["elmo", "word_emb", "lstm_outputs2"])
def test_fast_and_stock_implementations_agree(elmo_files, output_layer):
    ids = batch_to_ids(SENTENCES)
    stock = make(elmo_files, implementation="stock", cache="none", output_layer=output_layer).eval()
    fast = make(elmo_files, implementation="fast", cache="none", output_layer=output_layer).eval()
    assert fast.get_output_dim() == stock.get_output_dim()
    assert (fast(ids) - stock(ids)).abs().max().item() < 1e-5


@pytest.mark.parametrize("implementation", ["fast", "stock"])
@pytest.mark.parametrize("cache", ["none", "memory"])
def test_a_sentence_does_not_depend_on_the_rest_of_its_batch(elmo_files, cache, implementation):
    # Up to round-off, on every CPU kind (CI runs this under forced AVX2 and plain kernels too):
    # a matrix product's rounding depends on its row count, so bit-identity is not promised.
    # The same batch again gives the same bits.
    model = make(elmo_files, cache=cache, implementation=implementation).eval()
    ids = batch_to_ids(SENTENCES)
    together = model(ids)
    assert torch.equal(make(elmo_files, cache=cache, implementation=implementation).eval()(ids), together)
    tolerance = BATCH_TOLERANCE * together.abs().max().item()
    for row, sentence in enumerate(SENTENCES):
        alone = make(elmo_files, cache=cache, implementation=implementation).eval()(batch_to_ids([sentence]))
        assert (together[row, : len(sentence)] - alone[0]).abs().max().item() <= tolerance


def test_projection_dim_and_more_leading_dimensions(elmo_files):
    model = make(elmo_files, projection_dim=5).eval()
    ids = batch_to_ids(SENTENCES)
    flat = model(ids)
    assert model.get_output_dim() == 5 and flat.shape == (4, 8, 5)
    nested = model(ids.view(2, 2, 8, 50))
    assert nested.shape == (2, 2, 8, 5)
    assert (nested.view(4, 8, 5) - flat).abs().max().item() < 1e-6


def test_with_the_cache_only_the_mix_and_projection_train(elmo_files):
    model = make(elmo_files, cache="memory", projection_dim=3).train()
    ids = batch_to_ids(SENTENCES)
    model(ids)  # fill the cache, then train on hits
    model(ids).sum().backward()
    assert model.activation_cache.hits == 4
    trained = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert trained == {
        "_scalar_mix.scalar_parameters.0",
        "_scalar_mix.scalar_parameters.1",
        "_scalar_mix.scalar_parameters.2",
        "_scalar_mix.gamma",
        "_projection.weight",
        "_projection.bias",
    }
    assert not any(p.requires_grad for p in model._bilm.parameters())


def test_requires_grad_bypasses_the_cache_and_trains_the_bilm(elmo_files, caplog):
    with caplog.at_level("WARNING"):
        model = make(elmo_files, cache="memory", requires_grad=True).train()
    assert model.activation_cache is None
    assert "bypassed" in caplog.text
    model(batch_to_ids(SENTENCES)).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model._bilm.parameters())


def test_a_biLM_unfrozen_after_construction_is_not_cached(elmo_files):
    model = make(elmo_files, cache="memory").train()
    ids = batch_to_ids(SENTENCES)
    model(ids)
    for parameter in model._bilm.parameters():
        parameter.requires_grad_(True)
    model(ids).sum().backward()
    assert (model.activation_cache.misses, model.activation_cache.hits) == (4, 0)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model._bilm.parameters())


def test_the_state_dict_does_not_depend_on_the_cache(elmo_files):
    cached = make(elmo_files, cache="memory").state_dict()
    uncached = make(elmo_files, cache="none").state_dict()
    assert list(cached) == list(uncached)


def test_registered_as_ner_elmo(elmo_files):
    options, weights = elmo_files
    model = TokenEmbedder.from_params(
        Params({"type": "ner_elmo", "options_file": options, "weight_file": weights,
                "implementation": "stock", "output_layer": "lstm_outputs1", "cache": "none"})
    )
    assert isinstance(model, NerElmoTokenEmbedder) and model._layers == [1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"output_layer": "lstm_outputs3"}, "output_layer must be one of"),
        ({"implementation": "tf"}, "implementation must be one of"),
        ({"cache": "redis"}, "cache must be one of"),
        ({"cache": "disk"}, "needs a cache_dir"),
        ({"cache_dtype": "bfloat16"}, "cache_dtype must be one of"),
        ({"output_layer": "word_emb", "do_layer_norm": True}, 'apply to output_layer "elmo" only'),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(elmo_files, kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        make(elmo_files, **kwargs)


@pytest.mark.parametrize("bilm_dtype, tolerance", [("bfloat16", 5e-2), ("float16", 5e-3), ("int8", 5e-2)])
def test_reduced_precision_bilm_stays_near_float32(elmo_files, bilm_dtype, tolerance):
    ids = batch_to_ids(SENTENCES)
    full = make(elmo_files, implementation="fast", cache="none").eval()(ids)
    reduced = make(elmo_files, implementation="fast", cache="none", bilm_dtype=bilm_dtype).eval()(ids)
    difference = (full - reduced).abs().max().item()
    assert 0 < difference < tolerance


def test_reduced_precision_needs_the_fast_biLM(elmo_files):
    with pytest.raises(ConfigurationError, match='bilm_dtype \'bfloat16\' needs implementation "fast"'):
        make(elmo_files, implementation="stock", bilm_dtype="bfloat16")
    with pytest.raises(ConfigurationError, match="bilm_dtype must be one of"):
        make(elmo_files, implementation="fast", bilm_dtype="float64")
