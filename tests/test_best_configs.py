"""
The configs shipped for the results log's best rows are the models those rows trained with `-o`
overrides on another config: the same resolved configuration (what `allennlp train` builds).
"""
import json

import pytest
from allennlp.common import Params

from config_env import CONFIGS

# shipped config -> (the config the rows name, their overrides, what differs without changing the model)
SHIPPED = {
    "conll2003_elmo_one_layer.jsonnet": (
        "conll2003_elmo.jsonnet", {"model.encoder.num_layers": 1},
        # torch applies an LSTM's dropout between layers only: with one layer, none either way.
        {"model.encoder.dropout": 0.0},
    ),
    "conll2003_glove_char_document_context.jsonnet": (
        "conll2003_glove_char.jsonnet",
        {"dataset_reader.document_context_tokens": 128, "data_loader.batch_sampler.batch_size": 8}, {},
    ),
}


@pytest.mark.parametrize("shipped", sorted(SHIPPED))
def test_a_shipped_best_config_is_its_rows_overrides(shipped, fixture_env):
    base, overrides, same_model = SHIPPED[shipped]
    rows_model = Params.from_file(str(CONFIGS / base), json.dumps({**overrides, **same_model})).as_dict(quiet=True)
    assert Params.from_file(str(CONFIGS / shipped)).as_dict(quiet=True) == rows_model
