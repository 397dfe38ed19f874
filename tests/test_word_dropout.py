"""Dropout kinds of `ner_crf_tagger`: standard, locked over time, word dropout; train -> save -> load."""
import copy
import json

import pytest
import torch
from allennlp.common import Params
from allennlp.common.testing import ModelTestCase
from allennlp.data import Batch, DatasetReader, Vocabulary
from allennlp.models import Model

from config_env import CONFIGS, FIXTURES
from ner_elmo.modules.word_dropout import WordDropout, sequence_dropout


def test_locked_dropout_drops_a_feature_for_the_whole_sentence():
    torch.manual_seed(0)
    dropout = sequence_dropout(0.5, "locked").train()
    out = dropout(torch.ones(4, 9, 16))
    assert set(out.unique().tolist()) == {0.0, 2.0}  # kept features scaled by 1 / (1 - p)
    assert torch.equal(out, out[:, :1, :].expand_as(out))  # the same mask at every time step
    assert not torch.equal(out[0], out[1])  # but its own mask per sentence


def test_standard_dropout_draws_per_element_as_torch_does():
    inputs = torch.randn(3, 7, 5)
    torch.manual_seed(1)
    ours = sequence_dropout(0.5).train()(inputs)
    torch.manual_seed(1)
    assert torch.equal(ours, torch.nn.Dropout(0.5).train()(inputs))
    assert not torch.equal(ours, ours[:, :1, :].expand_as(ours))


def test_word_dropout_zeroes_whole_tokens_and_keeps_the_rest():
    torch.manual_seed(2)
    inputs = torch.rand(6, 10, 8) + 1.0  # no zeros of its own
    out = WordDropout(0.5).train()(inputs)
    dropped = (out == 0).all(dim=2)
    kept = (out == inputs).all(dim=2)
    assert torch.equal(dropped | kept, torch.ones_like(dropped))
    assert dropped.any() and kept.any()


def test_nothing_is_dropped_in_evaluation():
    inputs = torch.randn(2, 5, 4)
    for dropout in (sequence_dropout(0.5), sequence_dropout(0.5, "locked"), WordDropout(0.1)):
        assert torch.equal(dropout.eval()(inputs), inputs)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: sequence_dropout(0.5, "variational"), "dropout kind must be one of 'standard', 'locked', got 'variational'"),
        (lambda: sequence_dropout(1.0), "dropout must be in [0, 1), got 1.0"),
        (lambda: WordDropout(-0.1), "word_dropout must be in [0, 1), got -0.1"),
    ],
)
def test_bad_settings_are_named(build, message):
    with pytest.raises(ValueError) as error:
        build()
    assert str(error.value) == message


def _model_params(**overrides):
    params = Params.from_file(str(CONFIGS / "conll2003_glove_char.jsonnet"))
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    instances = list(reader.read(FIXTURES / "conll" / "train.iob1.txt"))
    vocab = Vocabulary.from_instances(instances)
    return vocab, instances, {**params.pop("model").as_dict(), **overrides}


def test_the_tagger_feeds_its_encoder_whole_words_or_zeros(fixture_env):
    vocab, instances, model_params = _model_params(dropout=None, word_dropout=0.3)
    torch.manual_seed(0)
    model = Model.from_params(vocab=vocab, params=Params(model_params))
    seen = []
    model.encoder.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    batch = Batch(instances)
    batch.index_instances(vocab)
    tensors = batch.as_tensor_dict()
    model.train()
    model(**tensors)
    embedded = model.text_field_embedder(tensors["tokens"])
    mask = tensors["tokens"]["tokens"]["tokens"] != 0
    dropped = (seen[0] == 0).all(dim=2) & mask
    kept = torch.isclose(seen[0], embedded, atol=1e-6).all(dim=2) & mask
    assert torch.equal(dropped | kept, mask)  # every real token: its whole vector, or none of it
    assert 0.1 < dropped.sum().item() / mask.sum().item() < 0.5
    model.eval()
    seen.clear()
    model(**tensors)
    torch.testing.assert_close(seen[0], embedded)


def test_word_dropout_with_the_stock_forward_is_refused(fixture_env):
    vocab, _, model_params = _model_params(viterbi="stock", word_dropout=0.05)
    with pytest.raises(ValueError, match='word_dropout needs viterbi="batched"'):
        Model.from_params(vocab=vocab, params=Params(copy.deepcopy(model_params)))


def test_a_bad_dropout_kind_is_refused_when_the_model_is_built(fixture_env):
    vocab, _, model_params = _model_params(dropout_kind="gaussian")
    with pytest.raises(ValueError, match="dropout kind must be one of 'standard', 'locked', got 'gaussian'"):
        Model.from_params(vocab=vocab, params=Params(model_params))


@pytest.mark.usefixtures("fixture_env")
class TestLockedAndWordDropoutTagger(ModelTestCase):
    def test_train_save_load_gives_identical_predictions(self):
        self.set_up_model(CONFIGS / "conll2003_glove_char.jsonnet", FIXTURES / "conll" / "train.iob1.txt", seed=3)
        overrides = json.dumps({
            "model.dropout_kind": "locked", "model.word_dropout": 0.05, "trainer.num_epochs": 2,
            "data_loader.batch_sampler.batch_size": 4, "data_loader.batch_sampler.shuffle": False,
            "trainer.callbacks": [],
        })
        self.ensure_model_can_train_save_and_load(self.param_file, overrides=overrides, seed=3)
