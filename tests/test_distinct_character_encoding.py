"""
`distinct_character_encoding` against allennlp's `character_encoding` with the same weights:
the same encodings and gradients on batches that repeat words and carry padding, per-token
dropout, and state dicts that load both ways.
"""
import torch
from allennlp.common import Params
from allennlp.modules.token_embedders import TokenEmbedder

import ner_elmo.plugin  # noqa: F401  (registers the embedder)

# Gradients of a repeated word are summed in another order (index_add against the convolution's
# own reduction over rows).
TOLERANCE = 1e-5


def _embedder(kind, dropout=0.0):
    return TokenEmbedder.from_params(
        Params(
            {
                "type": kind,
                "embedding": {"embedding_dim": 4, "num_embeddings": 12},
                "encoder": {"type": "cnn", "embedding_dim": 4, "num_filters": 6, "ngram_filter_sizes": [2, 3]},
                "dropout": dropout,
            }
        )
    )


def _pair(dropout=0.0):
    torch.manual_seed(0)
    stock = _embedder("character_encoding", dropout)
    ours = _embedder("distinct_character_encoding", dropout)
    ours.load_state_dict(stock.state_dict())
    return stock, ours


def _characters():
    # (sentences, tokens, characters): "ab" three times across both sentences, a one-character
    # word, a word that is a prefix of another, padded tokens and a padded sentence end.
    words = {"ab": [3, 4], "abc": [3, 4, 5], "x": [9], "kkkk": [7, 7, 7, 7], "ba": [4, 3]}
    sentences = [["ab", "abc", "x", "ab", "kkkk"], ["ba", "ab", "x"]]
    tensor = torch.zeros(2, 5, 4, dtype=torch.long)
    for i, sentence in enumerate(sentences):
        for j, word in enumerate(sentence):
            tensor[i, j, : len(words[word])] = torch.tensor(words[word])
    return tensor


def test_encodings_and_gradients_equal_character_encodings():
    stock, ours = _pair()
    characters = _characters()
    weights = torch.randn(2, 5, 12)
    results = []
    for embedder in (stock, ours):
        embedder.zero_grad()
        output = embedder(characters)
        (output * weights).sum().backward()
        results.append((output.detach(), {n: p.grad.clone() for n, p in embedder.named_parameters()}))
    (stock_out, stock_grads), (our_out, our_grads) = results
    assert our_out.shape == (2, 5, 12) and ours.get_output_dim() == 12
    assert (our_out - stock_out).abs().max() < TOLERANCE
    # The three "ab" tokens share one encoding; "ab" and "ba" do not.
    assert torch.equal(our_out[0, 0], our_out[0, 3]) and torch.equal(our_out[0, 0], our_out[1, 1])
    assert not torch.equal(our_out[0, 0], our_out[1, 0])
    assert stock_grads.keys() == our_grads.keys()
    for name in stock_grads:
        assert stock_grads[name].abs().max() > 0, name
        assert (our_grads[name] - stock_grads[name]).abs().max() < TOLERANCE, name


def test_each_token_draws_its_own_dropout_mask_and_eval_is_deterministic():
    _, ours = _pair(dropout=0.5)
    characters = _characters()
    ours.train()
    torch.manual_seed(3)
    output = ours(characters)
    # The same word at two positions keeps its encoding's values but not the same zeros.
    first, second = output[0, 0], output[0, 3]
    assert not torch.equal(first == 0, second == 0)
    ours.eval()
    assert torch.equal(ours(characters), ours(characters))


def test_state_dicts_load_both_ways():
    stock, ours = _pair()
    assert list(stock.state_dict()) == list(ours.state_dict())
    torch.manual_seed(5)
    fresh_stock = _embedder("character_encoding")
    fresh_stock.load_state_dict(ours.state_dict())
    characters = _characters()
    assert (fresh_stock(characters) - ours(characters)).abs().max() < TOLERANCE
