"""
`allennlp ner-export ARCHIVE OUT_DIR`: a trained tagger as a bundle (`ner_elmo.runtime.bundle`)
that `ner_elmo.load` runs with torch alone.
"""
import argparse
import datetime
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from allennlp.commands.subcommand import Subcommand
from allennlp.data.token_indexers import ELMoTokenCharactersIndexer, SingleIdTokenIndexer, TokenCharactersIndexer
from allennlp.models import Model
from allennlp.models.simple_tagger import SimpleTagger
from allennlp.modules.seq2seq_encoders import PassThroughEncoder, PytorchSeq2SeqWrapper
from allennlp.modules.seq2vec_encoders import CnnEncoder
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.modules.token_embedders import ElmoTokenEmbedder, Embedding, TokenCharactersEncoder
from allennlp_models.tagging.models.crf_tagger import CrfTagger
import spacy

import ner_elmo
from ner_elmo.common.atomic_write import atomic_directory
from ner_elmo.common.safe_archive import add_trust_archive_argument, load_archive_safely
from ner_elmo.data.rule_tokenizer import RuleTokenizer
from ner_elmo.data.text_segmentation import blank_english
from ner_elmo.modules.bilstm import FusedBiLstm, ResidualBiLstm
from ner_elmo.modules.token_embedders.ner_elmo import NerElmoTokenEmbedder
from ner_elmo.predictors.ner import NerPredictor
from ner_elmo.runtime import bundle, onnx_export

logger = logging.getLogger(__name__)


class ExportError(ValueError):
    """An archive whose model the bundle cannot hold: the message names the component."""


@Subcommand.register("ner-export")
class NerExport(Subcommand):
    """
    Writes a trained tagger's archive as a bundle directory: weights in safetensors, the
    vocabularies (GloVe extension included) and labels as JSON, one `config.json` with the
    architecture, the tokenizer's settings, the label encoding, the project version and each
    file's SHA-256, and a generated `MODEL_CARD.md`. `ner_elmo.load(OUT_DIR)` then tags with
    torch alone, exactly as the archive's `ner` predictor does. The directory is written whole
    or not at all, and replaces what `OUT_DIR` held.
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Export a trained NER model archive as a torch-only bundle directory."
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument("archive_file", type=str, help="the model.tar.gz to export")
        subparser.add_argument("output_dir", type=str, help="the bundle directory to write")
        subparser.add_argument(
            "--onnx",
            action="store_true",
            help="also write the network up to the emission scores as ONNX (network.onnx), which "
            "ner_elmo.load then runs on onnxruntime without torch (models without ELMo)",
        )
        add_trust_archive_argument(subparser)
        subparser.set_defaults(func=_run)
        return subparser


def _run(args: argparse.Namespace) -> None:
    path = export_bundle(args.archive_file, args.output_dir, trust_archive=args.trust_archive, onnx=args.onnx)
    print(f"wrote {path}")


def export_bundle(archive_file: str, output_dir: str, trust_archive: bool = False, onnx: bool = False) -> Path:
    """Writes the bundle of `archive_file` to `output_dir` (see `NerExport`); returns its path.
    With `onnx`, the bundle also holds the network as ONNX (`ner_elmo.runtime.onnx_export`)."""
    archive = load_archive_safely(archive_file, trust_archive=trust_archive)
    predictor = NerPredictor(archive.model, archive.dataset_reader)
    files: Dict[str, Any] = {}  # bundle name -> a local file to copy, or bytes
    spec, weights, namespaces = describe(archive.model, archive.dataset_reader, predictor.label_encoding, archive_file, files)
    if onnx and onnx_export.unsupported(spec):
        raise ExportError(
            f"{archive_file}: --onnx covers models without ELMo; the input(s) "
            f"{', '.join(onnx_export.unsupported(spec))} run the ELMo biLM, which stays on torch "
            "(export without --onnx)"
        )
    vocab = archive.model.vocab
    vocabulary = {
        namespace: [vocab.get_token_from_index(index, namespace) for index in range(vocab.get_vocab_size(namespace))]
        for namespace in namespaces
    }
    config: Dict[str, Any] = {
        "format": bundle.FORMAT,
        "format_version": bundle.FORMAT_VERSION,
        "ner_elmo_version": ner_elmo.__version__,
        "model": spec,
        "inputs": predictor._inputs.settings(),
        "tokenizer": {"rules": bundle.TOKENIZER_NAME, "spacy_version": spacy.__version__},
    }
    destination = Path(output_dir)
    with atomic_directory(destination) as temporary:
        temporary = Path(temporary)
        temporary.mkdir(parents=True)
        from safetensors.torch import save_file

        save_file({name: tensor.detach().cpu().contiguous() for name, tensor in weights.items()}, str(temporary / bundle.WEIGHTS_NAME))
        (temporary / bundle.VOCABULARY_NAME).write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
        # The rules of the pipeline the `ner` predictor tokenizes raw text with (no spaCy at load).
        rules = RuleTokenizer.rules_of(blank_english())
        (temporary / bundle.TOKENIZER_NAME).write_text(json.dumps(rules, ensure_ascii=False), encoding="utf-8")
        card = model_card(archive, archive_file, spec, vocabulary, output_dir)
        (temporary / bundle.MODEL_CARD_NAME).write_text(card, encoding="utf-8")
        for name, source in files.items():  # the ELMo biLM's options and weights, copied
            if isinstance(source, bytes):
                (temporary / name).write_bytes(source)
            else:
                shutil.copyfile(source, temporary / name)
        names = [bundle.WEIGHTS_NAME, bundle.VOCABULARY_NAME, bundle.TOKENIZER_NAME, bundle.MODEL_CARD_NAME, *files]
        config["files"] = {name: bundle.sha256(temporary / name) for name in names}
        (temporary / bundle.CONFIG_NAME).write_text(json.dumps(config, indent=2), encoding="utf-8")
        if onnx:  # traced from the torch runtime's network, loaded from what was just written
            from ner_elmo.runtime.tagger import Tagger

            config["onnx"] = onnx_export.write_onnx(Tagger(temporary), temporary)
            names += [name for name in (config["onnx"]["network"], config["onnx"]["crf"]) if name]
            config["files"] = {name: bundle.sha256(temporary / name) for name in names}
            (temporary / bundle.CONFIG_NAME).write_text(json.dumps(config, indent=2), encoding="utf-8")
        # safetensors writes through a private temporary file: give every file the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        for path in temporary.iterdir():
            os.chmod(path, 0o666 & ~umask)
    return destination


def describe(
    model: Model, reader, label_encoding: str, source: str, files: Dict[str, Any]
) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor], List[str]]:
    """The bundle's architecture ("model" of config.json), its weights under the runtime's names
    (`ner_elmo.runtime.network`), and the vocabulary namespaces it reads; `files` gets the bundle
    file name and local source of each file to copy in (ELMo's)."""
    if isinstance(model, CrfTagger):
        tagger = "crf"
        if model._feedforward is not None:
            raise ExportError(f"{source}: model.feedforward cannot be exported (a crf_tagger without one can)")
    elif isinstance(model, SimpleTagger):
        tagger = "softmax"
    else:
        raise ExportError(f"{source}: model type {type(model).__name__} cannot be exported (crf_tagger or simple_tagger taggers can)")
    embedder = model.text_field_embedder
    if type(embedder) is not BasicTextFieldEmbedder:
        raise ExportError(f"{source}: model.text_field_embedder {type(embedder).__name__} cannot be exported (basic can)")
    indexers = reader._token_indexers
    weights: Dict[str, torch.Tensor] = {}
    inputs, namespaces = [], []
    for key in embedder._ordered_embedder_keys:
        if key not in indexers:
            raise ExportError(f"{source}: the dataset reader has no token indexer {key!r} for the embedder of that name")
        item = _input(key, indexers[key], embedder._token_embedders[key], weights, source, files)
        inputs.append(item)
        if item.get("namespace"):
            namespaces.append(item["namespace"])
    encoder_spec = _encoder(model.encoder, weights, source)
    projection = model.tag_projection_layer._module
    _linear(weights, "projection", projection)
    spec: Dict[str, Any] = {
        "tagger": tagger,
        "label_encoding": label_encoding,
        "label_namespace": model.label_namespace,
        "num_tags": model.num_tags if tagger == "crf" else model.num_classes,
        "inputs": inputs,
        "encoder": encoder_spec,
        "encoder_output_dim": projection.in_features,
    }
    if tagger == "crf":
        crf = model.crf
        spec["crf"] = {"include_start_end_transitions": bool(crf.include_start_end_transitions)}
        weights["crf.transitions"] = crf.transitions
        weights["crf.constraint_mask"] = crf._constraint_mask
        if crf.include_start_end_transitions:
            weights["crf.start"], weights["crf.end"] = crf.start_transitions, crf.end_transitions
    namespaces.append(model.label_namespace)
    return spec, weights, namespaces


def _input(key: str, indexer, token_embedder, weights: Dict[str, torch.Tensor], source: str, files: Dict[str, Any]) -> Dict[str, Any]:
    where = f"{source}: model.text_field_embedder.token_embedders.{key}"
    if type(indexer) is ELMoTokenCharactersIndexer:
        return _elmo_input(key, indexer, token_embedder, weights, where, files)
    if getattr(indexer, "_start_tokens", None) or getattr(indexer, "_end_tokens", None):
        raise ExportError(f"{source}: token indexer {key!r} adds start or end tokens, which a bundle cannot hold")
    if type(indexer) is SingleIdTokenIndexer:
        if not isinstance(token_embedder, Embedding):
            raise ExportError(f"{where}: {type(token_embedder).__name__} cannot be exported for a single_id indexer")
        if token_embedder._projection is not None or token_embedder.max_norm is not None:
            raise ExportError(f"{where}: an embedding with a projection or max_norm cannot be exported")
        if indexer._feature_name != "text":
            raise ExportError(f"{source}: token indexer {key!r} reads the token's {indexer._feature_name!r}, not its text")
        table = token_embedder.weight
        extension = getattr(token_embedder, "extension", None)
        if extension is not None and len(extension):
            table = torch.cat([table, extension])  # the GloVe words the training data lacked
        weights[f"inputs.{key}.weight"] = table
        return {
            "key": key,
            "indexer": "single_id",
            "namespace": indexer.namespace,
            "lowercase_tokens": bool(indexer.lowercase_tokens),
            "embedder": {"type": "embedding", "embedding_dim": table.size(1)},
        }
    if type(indexer) is TokenCharactersIndexer:
        tokenizer = indexer._character_tokenizer
        if tokenizer._byte_encoding is not None or tokenizer._lowercase_characters or tokenizer._start_tokens or tokenizer._end_tokens:
            raise ExportError(f"{source}: token indexer {key!r}'s character tokenizer has settings a bundle cannot hold")
        if not isinstance(token_embedder, TokenCharactersEncoder):
            raise ExportError(f"{where}: {type(token_embedder).__name__} cannot be exported for a characters indexer")
        cnn = token_embedder._encoder._module
        if type(cnn) is not CnnEncoder:
            raise ExportError(f"{where}.encoder: {type(cnn).__name__} cannot be exported (cnn can)")
        activation = _activation_name(cnn._activation)
        if activation is None:
            raise ExportError(f"{where}.encoder: activation {cnn._activation!r} cannot be exported")
        char_embedding = token_embedder._embedding._module
        if char_embedding._projection is not None or char_embedding.max_norm is not None:
            raise ExportError(f"{where}.embedding: a projection or max_norm cannot be exported")
        weights[f"inputs.{key}.embedding"] = char_embedding.weight
        for index, convolution in enumerate(cnn._convolution_layers):
            weights[f"inputs.{key}.convolutions.{index}.weight"] = convolution.weight
            weights[f"inputs.{key}.convolutions.{index}.bias"] = convolution.bias
        _linear(weights, f"inputs.{key}.projection", cnn.projection_layer)
        return {
            "key": key,
            "indexer": "characters",
            "namespace": indexer._namespace,
            "min_padding_length": indexer._min_padding_length,
            "embedder": {
                "type": "char_cnn",
                "embedding_dim": char_embedding.weight.size(1),
                "num_filters": cnn._num_filters,
                "ngram_filter_sizes": list(cnn._ngram_filter_sizes),
                "activation": activation,
                "projection": cnn.projection_layer is not None,
                "output_dim": cnn.get_output_dim(),
            },
        }
    raise ExportError(f"{source}: token indexer {key!r} ({type(indexer).__name__}) cannot be exported")


def _elmo_input(key: str, indexer, token_embedder, weights: Dict[str, torch.Tensor], where: str, files: Dict[str, Any]) -> Dict[str, Any]:
    """The `ner_elmo` embedder: its biLM's files copied (checked to hold the archived biLM's
    weights), its mix and projection in the weights. allennlp's `elmo_token_embedder` goes to
    `_stock_elmo_input`."""
    if type(token_embedder) is ElmoTokenEmbedder:
        return _stock_elmo_input(key, indexer, token_embedder, weights, where, files)
    if type(token_embedder) is not NerElmoTokenEmbedder:
        raise ExportError(f"{where}: {type(token_embedder).__name__} cannot be exported for ELMo characters (ner_elmo can)")
    if token_embedder._implementation != "fast":
        raise ExportError(f'{where}: implementation {token_embedder._implementation!r} cannot be exported ("fast" can: the same weights)')
    if indexer._mapper.tokens_to_add:
        raise ExportError(f"{where}: an ELMo indexer with tokens_to_add cannot be exported")
    mix = token_embedder._scalar_mix
    if mix is not None and mix.do_layer_norm:
        raise ExportError(f"{where}: do_layer_norm cannot be exported")
    from ner_elmo.modules.elmo.bilm import FastElmoBiLm

    options_file, weight_file = token_embedder._options_file, token_embedder._weight_file
    reference = FastElmoBiLm(options_file, weight_file).state_dict()
    trained = token_embedder._bilm.state_dict()
    if reference.keys() != trained.keys() or any(not torch.equal(reference[name], trained[name]) for name in reference):
        raise ExportError(
            f"{where}: the archived biLM's weights differ from {token_embedder._weight_file} (fine-tuned, or another "
            "file): a bundle copies the file, so it cannot hold them"
        )
    files["elmo_options.json"], files["elmo_weights.hdf5"] = options_file, weight_file
    return _elmo_spec(key, token_embedder, mix, token_embedder._layers, weights)


def _stock_elmo_input(key: str, indexer, token_embedder, weights: Dict[str, torch.Tensor], where: str, files: Dict[str, Any]) -> Dict[str, Any]:
    """
    allennlp's `elmo_token_embedder`: the same weights, run by the stateless `FastElmoBiLm`.
    allennlp's biLM carries its LSTM states from one batch into the next, so its outputs depend
    on what it tagged before; the bundle's start every sentence from zero states (what allennlp's
    computes on its first batch).
    """
    from allennlp.common.file_utils import cached_path

    elmo = token_embedder._elmo
    bilm = elmo._elmo_lstm
    if indexer._mapper.tokens_to_add:
        raise ExportError(f"{where}: an ELMo indexer with tokens_to_add cannot be exported")
    if elmo._keep_sentence_boundaries or len(elmo._scalar_mixes) != 1 or elmo._scalar_mixes[0].do_layer_norm:
        raise ExportError(f"{where}: keep_sentence_boundaries, several representations or do_layer_norm cannot be exported")
    if bilm._requires_grad:
        raise ExportError(f"{where}: a fine-tuned biLM (requires_grad) cannot be exported: a bundle copies the weight file")
    encoder = bilm._token_embedder
    files["elmo_options.json"] = json.dumps(encoder._options).encode("utf-8")
    files["elmo_weights.hdf5"] = cached_path(encoder._weight_file)
    return _elmo_spec(key, token_embedder, elmo._scalar_mixes[0], list(range(bilm.num_layers)), weights)


def _elmo_spec(key: str, token_embedder, mix, layers: List[int], weights: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    """An ELMo input of the bundle: the mix's weights (when it mixes) and projection into
    `weights`, and its part of config.json (the biLM's files are `elmo_options.json` and
    `elmo_weights.hdf5`)."""
    if mix is not None:
        weights[f"inputs.{key}.scalar_parameters"] = torch.cat([p.detach().reshape(1) for p in mix.scalar_parameters])
        weights[f"inputs.{key}.gamma"] = mix.gamma.detach().reshape(1)
    projection = token_embedder._projection
    _linear(weights, f"inputs.{key}.projection", projection)
    return {
        "key": key,
        "indexer": "elmo_characters",
        "namespace": None,
        "embedder": {
            "type": "elmo",
            "options_file": "elmo_options.json",
            "weight_file": "elmo_weights.hdf5",
            "layers": layers,
            "mix": mix is not None,
            "projection_dim": projection.out_features if projection is not None else None,
            "output_dim": token_embedder.get_output_dim(),
        },
    }


def _linear(weights: Dict[str, torch.Tensor], name: str, linear: Optional[torch.nn.Linear]) -> None:
    """A linear layer's weight and bias under `name` (nothing for `None`)."""
    if linear is not None:
        weights[f"{name}.weight"], weights[f"{name}.bias"] = linear.weight, linear.bias


def _activation_name(activation) -> Optional[str]:
    kinds = {torch.nn.ReLU: "relu", torch.nn.Tanh: "tanh", torch.nn.Sigmoid: "sigmoid", torch.nn.Identity: "linear"}
    if type(activation) in kinds:
        return kinds[type(activation)]
    functions = {torch.relu: "relu", torch.tanh: "tanh", torch.sigmoid: "sigmoid"}
    return functions.get(activation)


def _encoder(encoder, weights: Dict[str, torch.Tensor], source: str) -> Dict[str, Any]:
    where = f"{source}: model.encoder"
    if isinstance(encoder, PassThroughEncoder):
        return {"type": "pass_through"}
    if isinstance(encoder, ResidualBiLstm):
        module, spec = encoder, {"type": "residual_bilstm", "input_size": encoder.get_input_dim(), "hidden_size": encoder._first._module.hidden_size}
    elif isinstance(encoder, FusedBiLstm):
        lstm = encoder._module
        module, spec = encoder, {"type": "fused_bilstm", "input_size": lstm.input_size, "hidden_size": lstm.hidden_size, "num_layers": lstm.num_layers}
    elif isinstance(encoder, PytorchSeq2SeqWrapper) and type(encoder._module) is torch.nn.LSTM:
        # allennlp's "lstm": the fused BiLSTM computes the same function with the same parameters.
        lstm = encoder._module
        if not lstm.bidirectional or not lstm.batch_first or lstm.proj_size or not lstm.bias:
            raise ExportError(f"{where}: only a bidirectional, batch-first LSTM with biases and no projection can be exported")
        module, spec = encoder, {"type": "fused_bilstm", "input_size": lstm.input_size, "hidden_size": lstm.hidden_size, "num_layers": lstm.num_layers}
    else:
        raise ExportError(f"{where}: {type(encoder).__name__} cannot be exported (fused_bilstm, residual_bilstm, lstm, pass_through can)")
    for name, tensor in module.state_dict().items():
        weights[f"encoder.{name}"] = tensor
    return spec


def model_card(archive, archive_file: str, spec: Dict[str, Any], vocabulary: Dict[str, List[str]], output_dir: str) -> str:
    """`MODEL_CARD.md`: what the model is, what it was trained on, and how well it did."""
    config = archive.config.as_dict(quiet=True)
    metrics_path = Path(archive_file).resolve().parent / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    lines = [
        f"# NER model: {Path(archive_file).resolve().parent.name}",
        "",
        f"Exported by `allennlp ner-export {archive_file} {output_dir}` with ner_elmo {ner_elmo.__version__} "
        f"on {datetime.date.today().isoformat()}. Load it with `ner_elmo.load(\"{output_dir}\")` (torch only).",
        "",
        "## Model",
        "",
        f"- tagger: {spec['tagger']} over {spec['num_tags']} tags ({spec['label_encoding']}), entity types: "
        + ", ".join(sorted({tag.split('-', 1)[1] for tag in vocabulary[spec['label_namespace']] if '-' in tag})),
        "- inputs: " + "; ".join(_input_line(item, vocabulary) for item in spec["inputs"]),
        f"- encoder: {json.dumps(spec['encoder'])}",
        "- embeddings needed at prediction time: none beyond this bundle (word vectors, GloVe extension included, are in "
        "its weights; an ELMo biLM's files are copied in)",
        "",
        "## Training",
        "",
        f"- training data: `{config.get('train_data_path')}`",
        f"- validation data: `{config.get('validation_data_path')}`",
        f"- test data: `{config.get('test_data_path')}`",
        f"- vocabulary built from: {config.get('datasets_for_vocab_creation', 'every dataset the config names')}",
        f"- best epoch: {metrics.get('best_epoch', 'unknown (no metrics.json beside the archive)')}",
        "",
        "## Scores (conlleval)",
        "",
    ]
    for split, prefix in (("dev", "best_validation_"), ("test", "test_")):
        lines.append(f"- {split} F1: {_scores(metrics, prefix, metrics_path.parent / f'{split}_report' / 'metrics.json')}")
    lines += ["", "## Training configuration", "", "```json", json.dumps(config, indent=2), "```", ""]
    return "\n".join(lines)


def _scores(metrics: Dict[str, Any], prefix: str, report: Path) -> str:
    """Overall and per-type conlleval F1 from `ner-report`'s metrics (`dev_report/`,
    `test_report/` beside the archive, as the accuracy runner writes them), else allennlp's."""
    if report.is_file():
        conlleval = json.loads(report.read_text())["conlleval"]
        overall = conlleval["overall"]["f1"]
        per_type = {name: scores["f1"] for name, scores in conlleval["by_type"].items()}
        source = f"ner-report, {report.parent.name}/"
    else:
        overall = metrics.get(f"{prefix}conlleval-f1-overall")
        if overall is None:
            return "not recorded"
        # Per-type metrics are named with a leading underscore (`_conlleval-f1-PER`).
        per_type = {
            key.split("conlleval-f1-", 1)[1]: 100 * value
            for key, value in metrics.items()
            if key.startswith((f"{prefix}conlleval-f1-", f"{prefix}_conlleval-f1-")) and not key.endswith("-overall")
        }
        overall, source = 100 * overall, "the run's metrics.json"
    detail = ", ".join(f"{name} {value:.2f}" for name, value in sorted(per_type.items()))
    return f"{overall:.2f} ({detail}; {source})"


def _input_line(item: Dict[str, Any], vocabulary: Dict[str, List[str]]) -> str:
    if not item.get("namespace"):
        layers = "the learned mix of its layers" if item["embedder"]["mix"] else f"layer {item['embedder']['layers'][0]}"
        return f"{item['key']} (ELMo, {layers}; its options and weights copied in)"
    size = len(vocabulary[item["namespace"]])
    return f"{item['key']} ({item['embedder']['type']}, {size} entries in '{item['namespace']}')"
