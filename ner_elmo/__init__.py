"""
ner_elmo: named-entity recognition with ELMo, as an AllenNLP plugin and as a torch-only tagger.

    import ner_elmo
    tagger = ner_elmo.load("runs/conll/bundle")   # a bundle (`allennlp ner-export`): torch only
    tagger("Angela Merkel met Emmanuel Macron in Berlin.")

Importing the package imports neither torch nor allennlp and sets nothing: `ner_elmo.load`
imports torch when it is called, and allennlp only for a `model.tar.gz`. When allennlp is
already loaded (it imports its plugins, `.allennlp_plugins` listing `ner_elmo`, or a package,
`--include-package ner_elmo`, before it reads a config), the import also registers every
component with AllenNLP (`ner_elmo.plugin`).

The numerical core (`ner_elmo.modules.elmo`, `ner_elmo.modules.viterbi`,
`ner_elmo.modules.crf_confidence`, `ner_elmo.scoring`, `ner_elmo.data.tag_schemes`) needs only
torch, numpy and h5py, so it runs on a machine without allennlp (a GPU box for benchmarks).
"""
import sys as _sys

__version__ = "0.1.0"

__all__ = ["load", "Entity", "Tagger", "__version__"]


def load(path, device: str = "cpu", **kwargs):
    """
    The tagger of a bundle directory written by `allennlp ner-export` (torch only, nothing of
    allennlp imported) or of a `model.tar.gz` (needs allennlp; loaded through
    `ner_elmo.common.safe_archive`). A bundle exported with `--onnx` runs on onnxruntime
    without torch (`runtime="torch"` to run it on torch). See `ner_elmo.runtime.load` and the
    taggers' classes for the keyword arguments.
    """
    from ner_elmo.runtime.load import load as _load

    return _load(path, device=device, **kwargs)


def __getattr__(name):
    # The runtime's classes, imported on first use (`Tagger` imports torch).
    if name == "Entity":
        from ner_elmo.runtime.text_tagger import Entity

        return Entity
    if name == "Tagger":
        from ner_elmo.runtime.tagger import Tagger

        return Tagger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if "allennlp" in _sys.modules:
    import ner_elmo.plugin  # noqa: E402,F401  (registers the components with AllenNLP)
