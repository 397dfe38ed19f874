"""
A bundle exported with `allennlp ner-export --onnx`, run by onnxruntime: its network up to the
emission scores is the ONNX graph (`ner_elmo.runtime.onnx_export`), and everything around it
(inputs, ids, decoding, entity scores) is `BundleTagger`'s numpy. Torch is not imported (raw
text is tokenized by spaCy, whose thinc imports torch when it is installed; pre-tokenized input
needs neither).
"""
import os
from typing import Any, List, Mapping, Optional, Sequence, Union

import numpy

from ner_elmo.runtime.bundle import BundleError
from ner_elmo.runtime.bundle_tagger import BundleTagger

NETWORK_NAME = "network.onnx"
CRF_NAME = "crf.safetensors"


def input_names(spec: Mapping[str, Any]) -> List[str]:
    """The graph's input names, in order (see `ner_elmo.runtime.onnx_export`)."""
    names = ["mask"]
    for item in spec["inputs"]:
        names += [f"{item['key']}.table", f"{item['key']}.rows"] if item["indexer"] == "characters" else [item["key"]]
    return names


def flat_inputs(spec: Mapping[str, Any], arrays: Mapping[str, Any], mask) -> List[Any]:
    """`BundleTagger.encode`'s arrays in the graph's input order."""
    flat = [mask]
    for item in spec["inputs"]:
        value = arrays[item["key"]]
        flat += list(value) if isinstance(value, tuple) else [value]
    return flat


class OnnxTagger(BundleTagger):
    """
    Tags texts with a bundle's ONNX network on onnxruntime (the `onnx` extra). Prefer
    `ner_elmo.load`, which picks it for a bundle exported with `--onnx`.

    # Parameters

    directory : the bundle.
    device : `str`, optional (default = `"cpu"`)
        `"cuda"` (or `"cuda:N"`) runs the graph with onnxruntime's CUDA provider (the
        `onnxruntime-gpu` package).
    threads : `int`, optional (default = `OMP_NUM_THREADS` when set, else onnxruntime's choice)
        The threads one forward pass uses.
    batch_size, min_score, temperature, and the input limits: see `BundleTagger`.
    """

    def __init__(
        self,
        directory: Union[str, os.PathLike],
        device: str = "cpu",
        threads: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(directory, **kwargs)
        entry = self.config.get("onnx")
        if not isinstance(entry, dict):
            raise BundleError(f"{self.directory}: not exported with --onnx (its config.json has no \"onnx\")")
        try:
            import onnxruntime
        except ImportError:
            raise ImportError(
                f"{self.directory} is an ONNX bundle: install onnxruntime (pip install 'ner-elmo[onnx]'), "
                "or load it with runtime=\"torch\""
            ) from None
        self._onnxruntime = onnxruntime
        if device == "cpu":
            providers = ["CPUExecutionProvider"]
        elif device.startswith("cuda"):
            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                raise ValueError(f"device={device!r}: this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
            index = int(device.split(":", 1)[1]) if ":" in device else 0
            providers = [("CUDAExecutionProvider", {"device_id": index})]
        else:
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', not {device!r}")
        self._providers = providers
        self._network_path = self.directory / entry["network"]
        self.set_threads(threads if threads is not None else int(os.environ.get("OMP_NUM_THREADS", "0") or 0))
        self._graph_inputs = {node.name for node in self._session.get_inputs()}
        self.device = device
        self._crf = None
        if entry.get("crf"):
            from safetensors import SafetensorError
            from safetensors.numpy import load_file

            crf_path = self.directory / entry["crf"]
            try:
                crf = load_file(str(crf_path))
                self._crf = (crf["transitions"], crf["start"], crf["end"])
            except (SafetensorError, OSError, KeyError) as error:
                raise BundleError(f"{crf_path}: not the CRF's transitions, start and end ({error})") from None

    def set_threads(self, threads: int) -> None:
        """Runs the graph with `threads` threads from now on (0: onnxruntime's choice)."""
        options = self._onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = self._onnxruntime.InferenceSession(str(self._network_path), options, providers=self._providers)
        except Exception as error:  # onnxruntime raises its own exception types
            raise BundleError(f"{self._network_path}: not a loadable ONNX graph ({error})") from None

    def logits(self, sentences: Sequence[Sequence[Any]]):
        """The emission scores `(batch, time, tags)` of sentences of tokens, and the mask (numpy)."""
        arrays, mask, _ = self.encode(sentences)
        # The tracer leaves out an input the graph never reads.
        feed = {
            name: value
            for name, value in zip(input_names(self.spec), flat_inputs(self.spec, arrays, mask))
            if name in self._graph_inputs
        }
        (logits,) = self._session.run(["logits"], feed)
        return logits, mask

    def decode(self, logits: numpy.ndarray, mask: numpy.ndarray, temperature: Optional[float] = None):
        """Each row's `(tags, SentenceScores)` (`BundleTagger.decode_numpy`)."""
        return self.decode_numpy(logits, mask, self._crf, temperature)
