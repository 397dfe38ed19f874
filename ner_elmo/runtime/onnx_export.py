"""
A bundle's network, up to the emission scores, as an ONNX graph (`allennlp ner-export --onnx`):
traced from the torch runtime's `TaggerNetwork` (the modules training ran), with the CRF's
decoder scores beside it in `crf.safetensors`. `ner_elmo.runtime.onnx_tagger` runs it.

Inputs: `mask` `(sentences, time)` bool; per word input, its ids `(sentences, time)` int64; per
character input, `<key>.table` `(words, width)` (each distinct word's character ids) and
`<key>.rows` `(sentences, time)` (each token's row of it). Output: `logits`
`(sentences, time, tags)`. Every size is dynamic.

Models with ELMo are not exported: the biLM's LSTM clips its cell and projects its state at every
step, which ONNX's LSTM operator cannot express, and an unrolled loop per step would be
slower than the torch runtime's fused products (`ner_elmo.modules.elmo`).
"""
from pathlib import Path
from typing import Any, Dict, List, Mapping

import torch

from ner_elmo.data.text_segmentation import TextToken
from ner_elmo.runtime.onnx_tagger import CRF_NAME, NETWORK_NAME, flat_inputs, input_names

#: The ONNX operator set the graph is written with (onnxruntime has run it since 1.10).
OPSET = 17


class EmissionScores(torch.nn.Module):
    """`TaggerNetwork.forward` with its inputs as a flat list, the order of `input_names`."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network
        self.items = list(network.spec["inputs"])

    def forward(self, mask: torch.Tensor, *arrays: torch.Tensor) -> torch.Tensor:
        inputs: Dict[str, Any] = {}
        position = 0
        for item in self.items:
            if item["indexer"] == "characters":
                inputs[item["key"]] = (arrays[position], arrays[position + 1])
                position += 2
            else:
                inputs[item["key"]] = arrays[position]
                position += 1
        return self.network(inputs, mask)


def unsupported(spec: Mapping[str, Any]) -> List[str]:
    """The inputs of a bundle's architecture that ONNX export does not cover (ELMo's)."""
    return [item["key"] for item in spec["inputs"] if item["indexer"] == "elmo_characters"]


def write_onnx(tagger, directory: Path) -> Dict[str, Any]:
    """
    Writes `tagger`'s (a torch `Tagger`) network as `network.onnx` in `directory`, and a CRF
    tagger's decoder scores as `crf.safetensors`; returns the config's `"onnx"` entry.
    """
    from safetensors.numpy import save_file

    spec = tagger.spec
    sample = [
        [TextToken(word, 0, len(word)) for word in "Peter Blackburn visited Brussels .".split()],
        [TextToken(word, 0, len(word)) for word in "EU rejects German call".split()],
    ]
    arrays, mask, _ = tagger.encode(sample)
    example = tuple(torch.from_numpy(value) for value in flat_inputs(spec, arrays, mask))
    names = input_names(spec)
    dynamic = {name: {0: "sentences", 1: "time"} for name in names}
    for item in spec["inputs"]:
        if item["indexer"] == "characters":
            dynamic[f"{item['key']}.table"] = {0: "words", 1: "width"}
    dynamic["logits"] = {0: "sentences", 1: "time"}
    module = EmissionScores(tagger._network).eval()
    with torch.no_grad():
        torch.onnx.export(
            module,
            example,
            str(directory / NETWORK_NAME),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    entry: Dict[str, Any] = {"network": NETWORK_NAME, "opset": OPSET, "inputs": names, "crf": None}
    if tagger._crf is not None:
        transitions, start, end = tagger._crf
        save_file({"transitions": transitions, "start": start, "end": end}, str(directory / CRF_NAME))
        entry["crf"] = CRF_NAME
    return entry
