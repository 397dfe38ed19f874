"""
A bundled tagger's network in torch alone, built from the bundle's `config.json` ("model") and
its weights. Each piece runs the computation the allennlp component ran in training, from the
same module: the word embedding is a table lookup (the training words' rows and the GloVe
extension's, joined), the character CNN is `ner_elmo.modules.char_cnn`, the encoders are
`ner_elmo.modules.bilstm`, the CRF's scores `ner_elmo.modules.viterbi.constrained_transitions`.
"""
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import torch

from ner_elmo.modules.bilstm import FusedBiLstm, ResidualBiLstm
from ner_elmo.modules.elmo.layer_mix import mix_layers, remove_sentence_boundaries
from ner_elmo.modules.char_cnn import ACTIVATIONS, cnn_word_encodings, distinct_word_encodings
from ner_elmo.modules.viterbi import constrained_transitions
from ner_elmo.runtime.bundle import BundleError


class WordEmbedding(torch.nn.Module):
    """A word id's vector: `weight[id]`."""

    def __init__(self, spec: Mapping[str, Any], vocabulary_size: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(vocabulary_size, spec["embedding_dim"]), requires_grad=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.embedding(ids, self.weight)


class CharacterCnn(torch.nn.Module):
    """A word's character CNN encoding (`ner_elmo.modules.char_cnn`), once per distinct word."""

    def __init__(self, spec: Mapping[str, Any], vocabulary_size: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Parameter(torch.empty(vocabulary_size, spec["embedding_dim"]), requires_grad=False)
        self.convolutions = torch.nn.ModuleList(
            torch.nn.Conv1d(spec["embedding_dim"], spec["num_filters"], width) for width in spec["ngram_filter_sizes"]
        )
        if spec["activation"] not in ACTIVATIONS:
            raise BundleError(f"unknown character CNN activation {spec['activation']!r}")
        self._activation = ACTIVATIONS[spec["activation"]]
        pooled = spec["num_filters"] * len(spec["ngram_filter_sizes"])
        self.projection = torch.nn.Linear(pooled, spec["output_dim"]) if spec.get("projection") else None

    def forward(self, characters) -> torch.Tensor:
        """`characters`: `(..., width)` ids, or a pair `(table, rows)`: each distinct word's ids
        `(words, width)` and each token's row of the table (`BundleTagger.encode`)."""
        if isinstance(characters, (tuple, list)):
            table, rows = characters
            return self._encode(table)[rows]
        return distinct_word_encodings(characters, self._encode)

    def _encode(self, characters: torch.Tensor) -> torch.Tensor:
        embedded = torch.nn.functional.embedding(characters, self.embedding)
        return cnn_word_encodings(embedded, characters != 0, self.convolutions, self._activation, self.projection)


class ElmoEmbedder(torch.nn.Module):
    """
    ELMo from the bundle's copy of the biLM's files, run by `FastElmoBiLm` (the `ner_elmo`
    embedder's `"fast"` implementation): the learned mix of its layers or one layer, without the
    sentence marks (`ner_elmo.modules.elmo.layer_mix`), then the optional projection.
    """

    def __init__(self, spec: Mapping[str, Any], directory: Path, dtype: str = "float32") -> None:
        super().__init__()
        from ner_elmo.modules.elmo.bilm import FastElmoBiLm  # h5py: imported for ELMo bundles only

        self.bilm = FastElmoBiLm(str(directory / spec["options_file"]), str(directory / spec["weight_file"]), dtype=dtype)
        self._layers = spec["layers"]
        self.mix = spec["mix"]
        if self.mix:
            self.scalar_parameters = torch.nn.Parameter(torch.zeros(len(self._layers)), requires_grad=False)
            self.gamma = torch.nn.Parameter(torch.ones(1), requires_grad=False)
        self.projection = (
            torch.nn.Linear(self.bilm.get_output_dim(), spec["projection_dim"]) if spec.get("projection_dim") else None
        )

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        output = self.bilm(char_ids)
        activations = [output["activations"][layer] for layer in self._layers]
        if self.mix:
            representation = mix_layers(activations, list(self.scalar_parameters), self.gamma)
        else:
            representation = activations[0]
        representation, _ = remove_sentence_boundaries(representation, output["mask"])
        return self.projection(representation) if self.projection is not None else representation


_EMBEDDERS = {"embedding": WordEmbedding, "char_cnn": CharacterCnn}


def _encoder(spec: Mapping[str, Any]) -> torch.nn.Module:
    kind = spec["type"]
    if kind == "fused_bilstm":
        return FusedBiLstm(spec["input_size"], spec["hidden_size"], spec["num_layers"])
    if kind == "residual_bilstm":
        return ResidualBiLstm(spec["input_size"], spec["hidden_size"])
    if kind == "pass_through":
        return _PassThrough()
    raise BundleError(f"unknown encoder type {kind!r}")


class _PassThrough(torch.nn.Module):
    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return inputs * mask.unsqueeze(-1).to(inputs.dtype)


class TaggerNetwork(torch.nn.Module):
    """
    Token ids in, emission scores (logits) out: the embedders' outputs concatenated in the
    bundle's order, the encoder, and the tag projection. A CRF tagger also holds its transition
    scores (`transition_scores`).
    """

    def __init__(
        self, spec: Mapping[str, Any], vocabulary: Mapping[str, List[str]], directory: Path, elmo_dtype: str = "float32"
    ) -> None:
        super().__init__()
        self.spec = spec
        self.inputs = torch.nn.ModuleDict()
        for item in spec["inputs"]:
            embedder = item["embedder"]
            if embedder["type"] == "elmo":
                self.inputs[item["key"]] = ElmoEmbedder(embedder, directory, elmo_dtype)
                continue
            if embedder["type"] not in _EMBEDDERS:
                raise BundleError(f"unknown embedder type {embedder['type']!r}")
            self.inputs[item["key"]] = _EMBEDDERS[embedder["type"]](embedder, len(vocabulary[item["namespace"]]))
        self.encoder = _encoder(spec["encoder"])
        self.projection = torch.nn.Linear(spec["encoder_output_dim"], spec["num_tags"])
        if spec["tagger"] == "crf":
            tags = spec["num_tags"]
            self.crf = torch.nn.Module()
            self.crf.register_buffer("transitions", torch.zeros(tags, tags))
            self.crf.register_buffer("constraint_mask", torch.ones(tags + 2, tags + 2))
            if spec["crf"]["include_start_end_transitions"]:
                self.crf.register_buffer("start", torch.zeros(tags))
                self.crf.register_buffer("end", torch.zeros(tags))

    def load_weights(self, weights: Dict[str, torch.Tensor], source: str) -> None:
        """Every tensor of the network from `weights`, which must hold exactly these, shaped so
        (an ELMo biLM's come from the bundle's copy of its HDF5 file instead)."""
        expected = {name: value for name, value in self.state_dict().items() if ".bilm." not in name}
        missing = sorted(set(expected) - set(weights))
        unexpected = sorted(set(weights) - set(expected))
        if missing or unexpected:
            raise BundleError(
                f"{source}: the weights do not fit the architecture of config.json"
                + (f"; missing: {', '.join(missing[:5])}" if missing else "")
                + (f"; unexpected: {', '.join(unexpected[:5])}" if unexpected else "")
            )
        for name, tensor in weights.items():
            if tensor.shape != expected[name].shape:
                raise BundleError(
                    f"{source}: {name} has shape {tuple(tensor.shape)}, the architecture needs {tuple(expected[name].shape)}"
                )
        self.load_state_dict(weights, strict=False)

    def transition_scores(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The CRF's transition, start and end scores as its decoder sees them."""
        return constrained_transitions(
            self.crf.transitions, self.crf.constraint_mask, getattr(self.crf, "start", None), getattr(self.crf, "end", None)
        )

    def forward(self, inputs: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        embedded = torch.cat([self.inputs[item["key"]](inputs[item["key"]]) for item in self.spec["inputs"]], dim=-1)
        return self.projection(self.encoder(embedded, mask))
