"""
A fast, stateless ELMo biLM in pure torch + numpy + h5py (no allennlp import):
character ids (`char_ids`), the bilm-tf weight layout (`hdf5_layout`, `weights_io`) and
`FastElmoBiLm` (`bilm`), a drop-in for allennlp's `_ElmoBiLm`.
"""
from ner_elmo.modules.elmo.bilm import FastElmoBiLm
from ner_elmo.modules.elmo.char_ids import batch_to_char_ids, token_to_char_ids
from ner_elmo.modules.elmo.hdf5_layout import read_options, read_weights

__all__ = [
    "FastElmoBiLm",
    "batch_to_char_ids",
    "token_to_char_ids",
    "read_options",
    "read_weights",
    "write_random_elmo",
]


def __getattr__(name):
    # Imported on demand so that `python -m ner_elmo.modules.elmo.weights_io` does not find
    # its own module already imported.
    if name == "write_random_elmo":
        from ner_elmo.modules.elmo.weights_io import write_random_elmo

        return write_random_elmo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
