"""
`ner_elmo.load(path)`: a tagger from a bundle (torch, or onnxruntime for a bundle exported with
`--onnx`) or an archive (through allennlp). Imports none of them until it is called.

    tagger = ner_elmo.load("runs/conll/bundle")
    tagger("Angela Merkel met Emmanuel Macron in Berlin.")   # [Entity(...), ...]
    tagger.tag_batch(["First text.", ["Pre", "tokenized", "."]], batch_size=64)

Every kind tags exactly as the allennlp `ner` predictor does: the same sentence splitting and
tokens (`ner_elmo.runtime.inputs`), the same network computation, the same decoder, and the
same entity scores (`ner_elmo.modules.entity_confidence`).
"""
import os
from pathlib import Path
from typing import Any, Optional, Union

from ner_elmo.runtime import bundle as bundle_files


def load(path: Union[str, os.PathLike], device: str = "cpu", runtime: Optional[str] = None, **kwargs: Any):
    """
    The tagger of a bundle directory or a `model.tar.gz` (an `ArchiveTagger`, through allennlp).
    `runtime`: `"torch"` or `"onnx"` for a bundle; by default `"onnx"` when the bundle was
    exported with `--onnx` (it then needs the `onnx` extra, onnxruntime), else `"torch"`.
    """
    if bundle_files.is_bundle(path):
        if runtime is None:
            runtime = "onnx" if bundle_files.has_onnx(path) else "torch"
        if runtime == "onnx":
            from ner_elmo.runtime.onnx_tagger import OnnxTagger

            return OnnxTagger(path, device=device, **kwargs)
        if runtime != "torch":
            raise ValueError(f"runtime must be 'torch' or 'onnx', not {runtime!r}")
        from ner_elmo.runtime.tagger import Tagger

        return Tagger(path, device=device, **kwargs)
    if runtime not in (None, "allennlp"):
        raise ValueError(f"{path}: runtime={runtime!r} needs a bundle directory (`allennlp ner-export`)")
    if Path(path).is_file():
        from ner_elmo.runtime.archive_tagger import ArchiveTagger

        return ArchiveTagger(path, device=device, **kwargs)
    raise FileNotFoundError(f"{path}: neither a bundle directory (with config.json) nor a model archive file")
