"""
Environment variables read by the Jsonnet configs in `training_config/`.

AllenNLP hands every environment variable to Jsonnet as an external variable, and Jsonnet's
`std.extVar` has no default. The plugin's registration (`ner_elmo.plugin`, which `allennlp`
imports through `.allennlp_plugins` or `--include-package` before it reads a config) fills in the
defaults below for the variables that have one; a variable already set always wins. A plain
`import ner_elmo` sets nothing. Data paths have no default:
a config that needs one fails with Jsonnet's "undefined external variable: NAME" before training.
"""
import os
from typing import Dict

_ELMO_URL = "https://allennlp.s3.amazonaws.com/models/elmo/2x4096_512_2048cnn_2xhighway/"
#: AllenNLP's published ELMo (also the `ner_elmo` token embedder's default files).
ELMO_OPTIONS_URL = _ELMO_URL + "elmo_2x4096_512_2048cnn_2xhighway_options.json"
ELMO_WEIGHTS_URL = _ELMO_URL + "elmo_2x4096_512_2048cnn_2xhighway_weights.hdf5"

#: name -> (default, what it is). A default of `None` means "required when a config uses it".
VARIABLES: Dict[str, tuple] = {
    "NER_ELMO_CONLL_TRAIN": (None, "CoNLL training file (eng.train)"),
    "NER_ELMO_CONLL_DEV": (None, "CoNLL validation file (eng.testa)"),
    "NER_ELMO_CONLL_TEST": (None, "CoNLL test file (eng.testb), used by evaluate_on_test"),
    "NER_ELMO_GMB_CSV": (None, "Kaggle GMB ner_dataset.csv"),
    "NER_ELMO_SPANS_TRAIN": (None, "training texts with entity spans (doccano/Label Studio JSON lines, .spacy)"),
    "NER_ELMO_SPANS_DEV": (None, "validation texts with entity spans"),
    "NER_ELMO_SPANS_TEST": (None, "test texts with entity spans, used by evaluate_on_test"),
    "NER_ELMO_ELMO_OPTIONS": (ELMO_OPTIONS_URL, "ELMo options.json: URL or local path"),
    "NER_ELMO_ELMO_WEIGHTS": (ELMO_WEIGHTS_URL, "ELMo weights.hdf5: URL or local path"),
    "NER_ELMO_ELMO_DIM": ("1024", "ELMo output size: 2 x projection_dim of the options file"),
    "NER_ELMO_ELMO_IMPL": ("fast", 'ELMo implementation: "fast" (ner_elmo) or "stock" (allennlp)'),
    "NER_ELMO_ELMO_LAYER": (
        "elmo",
        'ELMo output: "elmo" (learned mix), "word_emb", "lstm_outputs1" or "lstm_outputs2"',
    ),
    "NER_ELMO_ELMO_CACHE": ("memory", 'frozen-biLM cache: "memory", "disk" or "none"'),
    "NER_ELMO_ELMO_DTYPE": (
        "float32",
        'precision of the fast biLM\'s LSTM products: "float32", "bfloat16" or "float16" (GPU), "int8" (CPU)',
    ),
    "NER_ELMO_ELMO_CACHE_DIR": (
        "~/.cache/ner_elmo/elmo_activations",
        'directory of the "disk" cache (entries are keyed by sentence and weights: safe to share)',
    ),
    "NER_ELMO_GLOVE": (
        "https://allennlp.s3.amazonaws.com/datasets/glove/glove.6B.50d.txt.gz",
        "GloVe 6B 50d vectors: URL or local path (empty: random init)",
    ),
}


def apply_defaults() -> None:
    """Set each variable that has a default and is not set yet."""
    for name, (default, _) in VARIABLES.items():
        if default is not None:
            os.environ.setdefault(name, default)
