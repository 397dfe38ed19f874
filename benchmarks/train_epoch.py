"""
Seconds per training epoch of the CoNLL ELMo crf_tagger with each ELMo variant.

    python benchmarks/train_epoch.py --options ELMO_OPTIONS.json --weights-dir DIR \
        [--conll eng.train] [--batches 4] [--batch-size 32] [--epochs 2] [--threads N]

The model is the architecture of AllenNLP's published NER ELMo config (and of
training_config/conll2003_elmo.jsonnet): ELMo from `--options` (full size: the original
2x4096_512_2048cnn_2xhighway) + a char-CNN (16-dim characters, 128 filters of width 3) + a
50-d word embedding (random over the training vocabulary here instead of GloVe) -> 2-layer
BiLSTM 200 -> CRF with BIOUL constraints, regularised mixing weights. The ELMo weights are
seeded random ones written once by `ner_elmo.modules.elmo.weights_io.write_random_elmo` into
`--weights-dir` (speed does not depend on their values).

Every variant trains on the same first `--batches` batches of the CoNLL file (`--conll` or env
NER_ELMO_CONLL_TRAIN), in file order, with allennlp's `GradientDescentTrainer` (Adam 1e-3,
gradient norm 5, no validation, no checkpoints), from the same seed. The tagger is
allennlp-models' `crf_tagger` (`--model ner_crf_tagger` for this package's, which decodes the
same way in batches):

* stock        allennlp's `_ElmoBiLm` (states reset per batch), no cache
* fast         ner_elmo's `FastElmoBiLm`, no cache
* fast+memory  `FastElmoBiLm` with the in-memory activation cache (epoch 1 fills it)
* fast-int8    `FastElmoBiLm` with int8 per-step products (`bilm_dtype: int8`, CPU), no cache

It prints each epoch's seconds and the ratio to stock's, then what the float16 cache would
cost in precision on these sentences (the float32 entries rounded to float16).
"""
import argparse
import gc
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

# tqdm reads this when it is first imported: allennlp's progress bars would bury the table.
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy
import torch

import ner_elmo.plugin  # noqa: F401  (registers the components)
from allennlp.common import Params
from allennlp.data import DatasetReader, Vocabulary
from allennlp.data.data_loaders import SimpleDataLoader
from allennlp.models import Model
from allennlp.training import GradientDescentTrainer
from allennlp.training.optimizers import AdamOptimizer

from ner_elmo.modules.elmo.weights_io import read_options
from toolbox import EpochTimer, benchmark_parser, each_thread_count, random_elmo_files

VARIANTS = {
    "stock": {"implementation": "stock", "cache": "none"},
    "fast": {"implementation": "fast", "cache": "none"},
    "fast+memory": {"implementation": "fast", "cache": "memory"},
    "fast-int8": {"implementation": "fast", "cache": "none", "bilm_dtype": "int8"},
}

INDEXERS = {
    "tokens": {"type": "single_id", "lowercase_tokens": True},
    "token_characters": {"type": "characters", "min_padding_length": 3},
    "elmo": {"type": "elmo_characters"},
}


class ForwardClock:
    """Accumulates the seconds spent in a module's forward (hooks; no change to the module)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.seconds = 0.0
        self._started = 0.0
        module.register_forward_pre_hook(self._start)
        module.register_forward_hook(self._stop)

    def _start(self, module, inputs) -> None:
        self._started = time.perf_counter()

    def _stop(self, module, inputs, output) -> None:
        self.seconds += time.perf_counter() - self._started


def elmo_files_for(options_path: str, weights_dir: str) -> Dict[str, str]:
    """Full-size random weights for `options_path`, written once under `weights_dir`."""
    directory = Path(weights_dir) / Path(options_path).name.replace(".json", "")
    options_file, weight_file = random_elmo_files(read_options(options_path), directory, seed=0)
    return {"options_file": options_file, "weight_file": weight_file}


def read_instances(conll_path: str, count: int):
    if "ner_conll" in DatasetReader.list_available():
        reader_params = {"type": "ner_conll", "tag_label": "ner", "coding_scheme": "auto", "label_encoding": "BIOUL"}
    else:  # allennlp-models' reader, converting CoNLL-2003's IOB1
        reader_params = {"type": "conll2003", "tag_label": "ner", "coding_scheme": "BIOUL"}
    reader = DatasetReader.from_params(Params({**reader_params, "token_indexers": INDEXERS}))
    return reader_params["type"], list(itertools.islice(reader.read(conll_path), count))


def build_model(
    model_type: str, vocab: Vocabulary, elmo_files: Dict[str, str], elmo_dim: int, variant: Optional[Dict[str, str]]
) -> Model:
    """The tagger with an ELMo `variant` (a dict of "ner_elmo" keys), or without ELMo for `None`."""
    embedders = {
        "tokens": {"type": "embedding", "embedding_dim": 50, "trainable": True},
        "token_characters": {
            "type": "character_encoding",
            # The published config leaves the namespace at "tokens" (sizing the character table
            # by the word vocabulary), which breaks on a sample where characters outnumber words.
            "embedding": {"embedding_dim": 16, "vocab_namespace": "token_characters"},
            "encoder": {
                "type": "cnn",
                "embedding_dim": 16,
                "num_filters": 128,
                "ngram_filter_sizes": [3],
                "conv_layer_activation": "relu",
            },
        },
    }
    if variant is not None:
        embedders["elmo"] = {"type": "ner_elmo", **elmo_files, "do_layer_norm": False, "dropout": 0.0, **variant}
    else:  # the indexers still produce ELMo ids: ignore them
        embedders["elmo"] = {"type": "empty"}
        elmo_dim = 0
    params = {
        "type": model_type,
        "label_encoding": "BIOUL",
        "dropout": 0.5,
        "include_start_end_transitions": False,
        "text_field_embedder": {"token_embedders": embedders},
        "encoder": {
            "type": "lstm",
            "input_size": 50 + 128 + elmo_dim,
            "hidden_size": 200,
            "num_layers": 2,
            "dropout": 0.5,
            "bidirectional": True,
        },
        "regularizer": {"regexes": [["scalar_parameters", {"type": "l2", "alpha": 0.1}]]},
    }
    return Model.from_params(vocab=vocab, params=Params(params))


def elmo_embedder_of(model: Model):
    return model.text_field_embedder._token_embedders["elmo"]


def train(model: Model, instances, vocab: Vocabulary, batch_size: int, epochs: int, cuda_device: int):
    """The epochs' seconds and the seconds in ELMo's forward of each, from the toolbox's `EpochTimer`."""
    loader = SimpleDataLoader(instances, batch_size, shuffle=False, vocab=vocab)
    if cuda_device >= 0:
        model = model.cuda(cuda_device)
        loader.set_target_device(torch.device("cuda", cuda_device))
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    elmo = model.text_field_embedder._token_embedders.get("elmo")
    clock = ForwardClock(elmo) if elmo is not None else None
    timer = EpochTimer(serialization_dir=tempfile.gettempdir(), forward_clock=clock, jsonl=False)
    trainer = GradientDescentTrainer(
        model=model,
        optimizer=AdamOptimizer(trainable, lr=1e-3),
        data_loader=loader,
        num_epochs=epochs,
        grad_norm=5.0,
        cuda_device=cuda_device,
        callbacks=[timer],
        enable_default_callbacks=False,
        run_confidence_checks=False,
    )
    trainer.train()
    return [r["seconds"] for r in timer.records], [r.get("forward_seconds", 0.0) for r in timer.records]


def float16_cost(cache) -> Dict[str, float]:
    """What storing these float32 entries in float16 would change, and the memory it saves."""
    max_error = max_value = max_relative = 0.0
    for entry in cache.store._entries.values():
        rounded = entry.astype(numpy.float16).astype(numpy.float32)
        error = numpy.abs(rounded - entry)
        max_error = max(max_error, float(error.max()))
        max_value = max(max_value, float(numpy.abs(entry).max()))
        nonzero = entry != 0
        if nonzero.any():
            max_relative = max(max_relative, float((error[nonzero] / numpy.abs(entry[nonzero])).max()))
    return {"max_abs_error": max_error, "max_abs_value": max_value, "max_relative_error": max_relative}


def main() -> None:
    parser = benchmark_parser(__doc__, threads=None)
    parser.add_argument("--options", required=True, help="ELMo options.json (e.g. the original 2x4096 ELMo's)")
    parser.add_argument("--weights-dir", required=True, help="where the random weights are written once")
    parser.add_argument("--conll", default=os.environ.get("NER_ELMO_CONLL_TRAIN"), help="CoNLL training file")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    parser.add_argument("--model", default="crf_tagger", help="crf_tagger (allennlp-models) or ner_crf_tagger")
    parser.add_argument("--cuda-device", type=int, default=0 if torch.cuda.is_available() else -1)
    args = parser.parse_args()
    if not args.conll:
        sys.exit("give --conll FILE or set NER_ELMO_CONLL_TRAIN")
    variants = args.variants.split(",")
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    for run in each_thread_count(args):
        measure(run, variants)


def measure(args: argparse.Namespace, variants: List[str]) -> None:
    """Every variant trained and timed with `args.threads` torch threads (None: torch's)."""
    elmo_files = elmo_files_for(args.options, args.weights_dir)
    options = read_options(elmo_files["options_file"])
    elmo_dim = 2 * options["lstm"]["projection_dim"]
    reader_name, instances = read_instances(args.conll, args.batches * args.batch_size)
    vocab = Vocabulary.from_instances(instances)
    tokens = sum(len(instance["tokens"]) for instance in instances)
    device = f"cuda:{args.cuda_device}" if args.cuda_device >= 0 else f"cpu, {torch.get_num_threads()} threads"
    print(
        f"{len(instances)} sentences, {tokens} tokens ({reader_name} reader, {args.conll}); "
        f"{args.batches} batches of {args.batch_size}; ELMo {Path(args.options).name} "
        f"(dim {elmo_dim}); {args.model}; {device}",
        flush=True,
    )

    # The first optimizer step and batch pay one-time costs (lazy imports and initialisation):
    # pay them on a tagger without ELMo so that no variant is charged for them.
    torch.manual_seed(0)
    train(build_model(args.model, vocab, elmo_files, elmo_dim, None), instances[: args.batch_size], vocab,
          args.batch_size, 1, args.cuda_device)

    results: Dict[str, List[float]] = {}
    elmo_results: Dict[str, List[float]] = {}
    for name in variants:
        torch.manual_seed(0)
        started = time.perf_counter()
        model = build_model(args.model, vocab, elmo_files, elmo_dim, VARIANTS[name])
        built = time.perf_counter() - started
        seconds, elmo_seconds = train(model, instances, vocab, args.batch_size, args.epochs, args.cuda_device)
        results[name] = seconds
        elmo_results[name] = elmo_seconds
        line = f"{name:12s} build {built:6.1f}s  " + "  ".join(
            f"epoch {i + 1} {s:8.2f}s ({tokens / s:6.0f} tok/s, ELMo forward {e:7.2f}s)"
            for i, (s, e) in enumerate(zip(seconds, elmo_seconds))
        )
        cache = elmo_embedder_of(model).activation_cache
        if cache is not None:
            line += f"  cache: {cache.hits} hits, {cache.misses} misses, {cache.store.nbytes / 2**20:.1f} MB"
            cost = float16_cost(cache)
            line += "\n" + " " * 13 + "float16 cache would add: " + json.dumps({k: float(f"{v:.3g}") for k, v in cost.items()})
        print(line, flush=True)
        del model
        gc.collect()

    print()
    print("Per epoch: seconds of the whole epoch, in the ELMo embedder's forward, and in the rest")
    print("(the tagger's own forward and backward, optimizer); 'vs stock' divides stock's by the row's.")
    print("No ELMo variant can make an epoch faster than its 'rest' allows.")
    header = f"{'variant':12s}" + "".join(
        f"{f'epoch {i + 1} s':>11s}{'vs stock':>9s}{'ELMo s':>9s}{'vs stock':>9s}{'rest s':>8s}" for i in range(args.epochs)
    )
    print(header)
    for name, seconds in results.items():
        row = f"{name:12s}"
        for epoch, value in enumerate(seconds):
            elmo = elmo_results[name][epoch]
            ratio = results["stock"][epoch] / value if "stock" in results else float("nan")
            elmo_ratio = elmo_results["stock"][epoch] / elmo if "stock" in results else float("nan")
            row += f"{value:11.2f}{ratio:8.1f}x{elmo:9.2f}{elmo_ratio:8.1f}x{value - elmo:8.2f}"
        print(row)
    # The rest is the same work in every variant; on a shared machine its spread is load noise.
    floor = min(value - elmo for name in results for value, elmo in zip(results[name], elmo_results[name]))
    if "stock" in results:
        print(
            f"Fastest rest: {floor:.2f}s, so an ELMo costing nothing would make stock's epochs "
            f"{min(results['stock']) / floor:.1f}x to {max(results['stock']) / floor:.1f}x faster at most."
        )


if __name__ == "__main__":
    main()
