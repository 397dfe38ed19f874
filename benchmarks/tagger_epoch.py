"""
Seconds per epoch of the no-ELMo CoNLL tagger, stock against ours, with the dev F1 after every
epoch (so that speed is never bought with accuracy).

    python benchmarks/tagger_epoch.py --conll-dir ../shared/data/conll2003 \
        --glove ../shared/embeddings/glove.6B.50d.txt.gz --epochs 3 --seeds 1 2 --threads 2

* stock: allennlp-models' `crf_tagger` with AllenNLP's published `ner.jsonnet` settings (its
  `conll2003` reader, GloVe 6B 50d + char-CNN 16/128/3 -> 2-layer BiLSTM 200 -> CRF, BIOUL,
  batches of 64 in file order, Adam 1e-3, gradient norm 5);
* ours: `training_config/conll2003_glove_char.jsonnet` as it is (`--config` for another);
* ours-1-layer, ours-2-layers (e.g. `--variants stock ours-1-layer ours-2-layers`): the config
  with one BiLSTM layer, or with AllenNLP's two (dropout 0.5 between them), which separates what
  the implementation gains from what the smaller model gains.

Both train with `allennlp train`'s machinery in this process, one after the other for each seed,
on the same files with the same number of threads, without checkpoints. A callback records the
seconds of each epoch's training batches and of its validation. Loading GloVe and reading the
data happen before the first epoch and are not counted. `--train-sentences N` trains on the first
N sentences only (the dev set stays whole).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
from typing import Any, Dict, List

os.environ.setdefault("TQDM_DISABLE", "1")  # allennlp's progress bars would bury the table

import torch  # noqa: E402

import ner_elmo.plugin  # noqa: E402,F401  (registers the components)
from allennlp.commands.train import train_model  # noqa: E402
from allennlp.common import Params  # noqa: E402
from toolbox import EpochTimer  # noqa: E402,F401  (registers "bench_epoch_timer", which run() adds)
from toolbox import REPO, benchmark_parser, each_thread_count, training_config  # noqa: E402


def stock_params(glove: str) -> Dict[str, Any]:
    """AllenNLP's published no-ELMo NER settings (allennlp-models training_config/tagging/ner.jsonnet)."""
    return {
        "dataset_reader": {
            "type": "conll2003", "tag_label": "ner", "coding_scheme": "BIOUL",
            "token_indexers": {"tokens": {"type": "single_id", "lowercase_tokens": True},
                               "token_characters": {"type": "characters", "min_padding_length": 3}},
        },
        "model": {
            "type": "crf_tagger", "label_encoding": "BIOUL", "constrain_crf_decoding": True,
            "calculate_span_f1": True, "dropout": 0.5, "include_start_end_transitions": False,
            "text_field_embedder": {"token_embedders": {
                "tokens": {"type": "embedding", "embedding_dim": 50, "pretrained_file": glove, "trainable": True},
                "token_characters": {"type": "character_encoding", "embedding": {"embedding_dim": 16},
                                     "encoder": {"type": "cnn", "embedding_dim": 16, "num_filters": 128,
                                                 "ngram_filter_sizes": [3], "conv_layer_activation": "relu"}},
            }},
            "encoder": {"type": "lstm", "input_size": 50 + 128, "hidden_size": 200, "num_layers": 2,
                        "dropout": 0.5, "bidirectional": True},
        },
        "data_loader": {"batch_size": 64},
        "trainer": {"optimizer": {"type": "adam", "lr": 0.001}, "validation_metric": "+f1-measure-overall",
                    "num_epochs": 75, "grad_norm": 5.0, "patience": 25},
    }


def our_params(config: str, env: Dict[str, str], num_layers: int = 0) -> Dict[str, Any]:
    params = training_config(config, env)
    if num_layers:
        params["model"]["encoder"].update(num_layers=num_layers, dropout=0.5 if num_layers > 1 else 0.0)
    return params


def run(name: str, params: Dict[str, Any], data: Dict[str, str], seed: int, epochs: int,
        train_sentences: int) -> List[Dict[str, Any]]:
    params = json.loads(json.dumps(params))  # a deep copy: Params pops keys from nested dicts
    params.update(train_data_path=data["train"], validation_data_path=data["dev"], evaluate_on_test=False,
                  random_seed=seed, numpy_seed=seed, pytorch_seed=seed)
    params.pop("test_data_path", None)
    if train_sentences:
        params["validation_dataset_reader"] = json.loads(json.dumps(params["dataset_reader"]))
        params["dataset_reader"]["max_instances"] = train_sentences
    trainer = dict(params["trainer"])
    trainer.update(num_epochs=epochs, patience=None, checkpointer={"save_completed_epochs": False})
    trainer["callbacks"] = [c for c in trainer.get("callbacks", []) if c.get("type") != "rng_state"]
    trainer["callbacks"].append({"type": "bench_epoch_timer"})
    params["trainer"] = trainer
    with tempfile.TemporaryDirectory() as directory:
        train_model(Params(params), directory, force=True)
        with open(os.path.join(directory, "epoch_times.jsonl")) as file:
            return [{"variant": name, "seed": seed, **json.loads(line)} for line in file]


def main(argv=None) -> None:
    parser = benchmark_parser(__doc__, threads=[2])
    parser.add_argument("--conll-dir", required=True, help="directory with eng.train and eng.testa")
    parser.add_argument("--glove", required=True, help="glove.6B.50d.txt.gz")
    parser.add_argument("--config", default=str(REPO / "training_config" / "conll2003_glove_char.jsonnet"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--train-sentences", type=int, default=0, help="first N training sentences (0: all)")
    parser.add_argument("--variants", nargs="+", default=["stock", "ours"], choices=["stock", "ours", "ours-1-layer", "ours-2-layers"])
    parser.add_argument("--output", default=None, help="also append every epoch's record here (JSON lines)")
    args = parser.parse_args(argv)
    for run_args in each_thread_count(args):
        measure(run_args)


def measure(args: argparse.Namespace) -> None:
    """Every seed and variant trained with `args.threads` threads, then the table."""
    data = {"train": os.path.join(args.conll_dir, "eng.train"), "dev": os.path.join(args.conll_dir, "eng.testa")}
    env = {"NER_ELMO_CONLL_TRAIN": data["train"], "NER_ELMO_CONLL_DEV": data["dev"],
           "NER_ELMO_CONLL_TEST": data["dev"], "NER_ELMO_GLOVE": args.glove}
    builders = {"stock": lambda: stock_params(args.glove), "ours": lambda: our_params(args.config, env),
                "ours-1-layer": lambda: our_params(args.config, env, num_layers=1),
                "ours-2-layers": lambda: our_params(args.config, env, num_layers=2)}
    records: List[Dict[str, Any]] = []
    for seed in args.seeds:
        for variant in args.variants:
            for record in run(variant, builders[variant](), data, seed, args.epochs, args.train_sentences):
                records.append(record)
                print(json.dumps(record), file=sys.stderr, flush=True)
                if args.output:
                    with open(args.output, "a") as file:
                        file.write(json.dumps(record) + "\n")

    print(f"\n{torch.get_num_threads()} threads, {args.train_sentences or 'all'} training sentences\n")
    print("| variant | seed | epoch | train s | validation s | dev F1 |\n|---|---|---|---|---|---|")
    for r in records:
        print(f"| {r['variant']} | {r['seed']} | {r['epoch']} | {r['train_seconds']:.1f} | "
              f"{r['validation_seconds']:.1f} | {100 * r['dev_f1']:.2f} |")
    def median(variant, key):
        return statistics.median(r[key] for r in records if r["variant"] == variant)

    compared = [v for v in args.variants if v != "stock"] if "stock" in args.variants else []
    for variant in compared:
        print(f"\n{variant} against stock:")
        for key in ("train_seconds", "validation_seconds"):
            print(f"median {key.replace('_', ' ')}: stock {median('stock', key):.1f}, {variant} "
                  f"{median(variant, key):.1f}: {median('stock', key) / median(variant, key):.2f}x")
        stock_epoch = median("stock", "train_seconds") + median("stock", "validation_seconds")
        epoch = median(variant, "train_seconds") + median(variant, "validation_seconds")
        print(f"median epoch (train + validation): {stock_epoch / epoch:.2f}x")


if __name__ == "__main__":
    main()
