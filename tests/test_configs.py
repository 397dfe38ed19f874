"""Every shipped config parses and builds its model from the fixture data."""
import os

import pytest
from allennlp.common import Params
from allennlp.data import DatasetReader, Vocabulary
from allennlp.models import Model

from config_env import CONFIGS

CONFIG_FILES = sorted(path.name for path in CONFIGS.glob("*.jsonnet"))


def test_the_documented_configs_exist():
    expected = {
        "conll2003_elmo.jsonnet",
        "conll2003_glove_char.jsonnet",
        "conll2003_glove_char_softmax.jsonnet",
        "gmb_elmo.jsonnet",
        "gmb_elmo_residual.jsonnet",
        "gmb_glove_char.jsonnet",
        "gmb_pos.jsonnet",
        "gmb_pos_glove_char.jsonnet",
    }
    assert expected <= set(CONFIG_FILES)


@pytest.mark.parametrize("config_name", CONFIG_FILES)
def test_config_builds_its_model_from_fixtures(config_name, fixture_env):
    params = Params.from_file(str(CONFIGS / config_name))
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    instances = list(reader.read(params.pop("train_data_path")))
    assert instances, f"{config_name}: no training instances read"
    vocab = Vocabulary.from_instances(instances)
    model = Model.from_params(vocab=vocab, params=params.pop("model"))
    assert model.default_predictor == "ner"
    # One forward pass with loss: the embedders, encoder and tagger fit together.
    output = model.forward_on_instances(instances[:2])
    assert len(output) == 2 and "tags" in model.make_output_human_readable(
        model.forward(**_batch(instances[:2], vocab))
    )


@pytest.mark.parametrize("config_name", CONFIG_FILES)
def test_config_writes_every_training_file_whole_or_not_at_all(config_name, fixture_env):
    trainer = Params.from_file(str(CONFIGS / config_name)).as_dict()["trainer"]
    assert trainer["type"] == "ner_gradient_descent"  # best.th
    assert trainer["checkpointer"]["type"] == "ner_atomic"
    assert {"type": "ner_atomic_archive"} in trainer["callbacks"]  # model.tar.gz


def _batch(instances, vocab):
    from allennlp.data import Batch

    batch = Batch(instances)
    batch.index_instances(vocab)
    return batch.as_tensor_dict()


def test_missing_data_variable_is_named(monkeypatch, fixture_env):
    monkeypatch.delenv("NER_ELMO_CONLL_TRAIN")
    with pytest.raises(RuntimeError, match="NER_ELMO_CONLL_TRAIN"):
        Params.from_file(str(CONFIGS / "conll2003_glove_char.jsonnet"))


def test_official_downloads_are_the_defaults(monkeypatch):
    for name in ("NER_ELMO_ELMO_OPTIONS", "NER_ELMO_ELMO_WEIGHTS", "NER_ELMO_GLOVE"):
        monkeypatch.delenv(name, raising=False)
    from ner_elmo.environment import apply_defaults

    apply_defaults()
    for name in ("NER_ELMO_CONLL_TRAIN", "NER_ELMO_CONLL_DEV", "NER_ELMO_CONLL_TEST"):
        monkeypatch.setenv(name, "unused")
    params = Params.from_file(str(CONFIGS / "conll2003_elmo.jsonnet")).as_dict()
    embedders = params["model"]["text_field_embedder"]["token_embedders"]
    assert embedders["elmo"]["weight_file"].startswith("https://allennlp.s3.amazonaws.com/models/elmo/")
    assert embedders["tokens"]["pretrained_file"].endswith("glove.6B.50d.txt.gz")
    assert params["model"]["encoder"]["input_size"] == 50 + 128 + 1024
    assert os.environ["NER_ELMO_ELMO_IMPL"] == "fast"


def test_disk_cache_goes_where_the_variable_says(monkeypatch, fixture_env, tmp_path):
    monkeypatch.setenv("NER_ELMO_ELMO_CACHE", "disk")
    monkeypatch.setenv("NER_ELMO_ELMO_CACHE_DIR", str(tmp_path / "activations"))
    params = Params.from_file(str(CONFIGS / "conll2003_elmo.jsonnet"))
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    instances = list(reader.read(params.pop("train_data_path")))[:3]
    vocab = Vocabulary.from_instances(instances)
    model = Model.from_params(vocab=vocab, params=params.pop("model"))
    model.forward_on_instances(instances)
    assert len([path for path in (tmp_path / "activations").rglob("*") if path.is_file()]) >= 3
