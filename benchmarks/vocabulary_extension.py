"""
What `pretrained_extension` (every GloVe word in the vocabulary, with its frozen vector) costs and
gives, side by side: the CoNLL no-ELMo config trained for one epoch without it and with it.

    python benchmarks/vocabulary_extension.py --train eng.train --dev eng.testa --test eng.testb \
        --glove glove.6B.50d.txt.gz --new-text some_other_text.txt \
        [--config training_config/conll2003_glove_char.jsonnet] [--work-dir runs/vocabulary_extension]

Each variant is trained with `allennlp train`'s machinery (the config as it is, with
`pretrained_extension` false or true, one epoch, validation on `--dev`, no test evaluation, seed
1) in a process of its own on one thread; its archive is then loaded in a fresh process. The table:

* vocabulary: words in the `tokens` namespace (the training words, then the GloVe words they lack);
* startup: from `train_model` to the first batch (reading the data, building the vocabulary and
  the model: reading GloVe), seconds;
* epoch: the seconds of the training batches and of validation (`bench_epoch_timer`, the
  benchmarks' `toolbox.EpochTimer`), then of what follows (checkpoint, best model, archive);
* the sizes of the epoch's checkpoint (`model_state_e1_b0.th`) and of `model.tar.gz`;
* load: `load_archive_safely` seconds (how the service and Spark load it), and the resident
  memory of the process after the imports and after loading (`VmRSS`);
* the share of `--test` tokens and of `--new-text` tokens (tokenized as the "ner" predictor
  tokenizes text) that have no vector: their lowercased text is in neither the training data nor
  (with the extension) GloVe, so the model sees the unknown word.

On the CoNLL-2003 files it takes minutes: run it on a machine that is otherwise idle.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

from toolbox import REPO, benchmark_parser, rss_mib, training_config

os.environ.setdefault("TQDM_DISABLE", "1")  # allennlp's progress bars would bury the table

VARIANTS = {"without": False, "with": True}


def train_step(args) -> Dict[str, Any]:
    """One epoch of the config with `pretrained_extension` set as `args.extension` says."""
    import torch
    from allennlp.commands.train import train_model
    from allennlp.common import Params
    from allennlp.training.callbacks import TrainerCallback

    import ner_elmo.plugin  # noqa: F401  (registers the components)
    from toolbox import EpochTimer  # noqa: F401  (registers "bench_epoch_timer")

    @TrainerCallback.register("bench_start_clock")
    class StartClock(TrainerCallback):
        def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
            (Path(self.serialization_dir) / "started.json").write_text(json.dumps(time.perf_counter() - started))

    torch.set_num_threads(1)
    env = {"NER_ELMO_CONLL_TRAIN": args.train, "NER_ELMO_CONLL_DEV": args.dev, "NER_ELMO_CONLL_TEST": args.test,
           "NER_ELMO_GLOVE": args.glove}
    params = training_config(args.config, env)
    params["model"]["text_field_embedder"]["token_embedders"]["tokens"]["pretrained_extension"] = args.extension == "on"
    params.update(evaluate_on_test=False, random_seed=args.seed, numpy_seed=args.seed, pytorch_seed=args.seed)
    params["trainer"].update(num_epochs=1, patience=None)
    params["trainer"]["callbacks"] = params["trainer"].get("callbacks", []) + [
        {"type": "bench_start_clock"}, {"type": "bench_epoch_timer"}]
    run_dir = Path(args.run_dir)
    started = time.perf_counter()
    train_model(Params(params), run_dir, force=True)
    total = time.perf_counter() - started
    (epoch,) = [json.loads(line) for line in (run_dir / "epoch_times.jsonl").read_text().splitlines()]
    startup = json.loads((run_dir / "started.json").read_text())
    return {
        "startup_s": startup,
        "train_s": epoch["train_seconds"],
        "validation_s": epoch["validation_seconds"],
        "after_epoch_s": total - startup - epoch["train_seconds"] - epoch["validation_seconds"],
        "dev_f1": epoch["dev_f1"],
        "checkpoint_mb": (run_dir / "model_state_e1_b0.th").stat().st_size / 2**20,
        "archive_mb": (run_dir / "model.tar.gz").stat().st_size / 2**20,
    }


def load_step(args) -> Dict[str, Any]:
    """Loads `args.archive` in this fresh process; the share of tokens without a vector."""
    import gc

    import torch

    import ner_elmo.plugin  # noqa: F401  (registers the components)
    from ner_elmo.common.safe_archive import load_archive_safely
    from ner_elmo.data.text_segmentation import TextSegmenter

    torch.set_num_threads(1)
    gc.collect()
    before = rss_mib()
    started = time.perf_counter()
    # As the service and Spark load an archive; trusted: its config names this script's callbacks.
    archive = load_archive_safely(args.archive, trust_archive=True)
    seconds = time.perf_counter() - started
    gc.collect()
    after = rss_mib()
    words = archive.model.vocab.get_token_to_index_vocabulary("tokens")

    def without_vector(tokens: List[str]) -> Dict[str, Any]:
        missing = sum(1 for token in tokens if token.lower() not in words)  # the indexer lowercases
        return {"tokens": len(tokens), "without_vector": missing, "share": missing / max(len(tokens), 1)}

    test_tokens = [token.text for instance in archive.validation_dataset_reader.read(args.test)
                   for token in instance["tokens"].tokens]
    new_text = Path(args.new_text).read_text(encoding="utf-8", errors="replace")
    new_tokens = [token.text for token in TextSegmenter().tokens(new_text)]
    return {"vocabulary": len(words), "load_s": seconds, "rss_before_load_mb": before, "rss_after_load_mb": after,
            "test": without_vector(test_tokens), "new_text": without_vector(new_tokens)}


def run_step(step: str, args, log: Path, **extra: str) -> Dict[str, Any]:
    """This script's `step` in a process of its own; its result is the last line it prints."""
    command = [sys.executable, __file__, "--step", step]
    for key in ("train", "dev", "test", "glove", "new_text", "config", "seed"):
        command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", value]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log, "w") as output:
        completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=output, text=True, env=env)
    if completed.returncode != 0:
        raise SystemExit(f"{step} failed ({completed.returncode}); see {log}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def table(results: Dict[str, Dict[str, Any]]) -> str:
    rows = [
        ("vocabulary (words)", lambda r: f"{r['vocabulary']:,}"),
        ("startup s (data, vocabulary, model with GloVe)", lambda r: f"{r['startup_s']:.1f}"),
        ("epoch: training batches s", lambda r: f"{r['train_s']:.1f}"),
        ("epoch: validation s", lambda r: f"{r['validation_s']:.1f}"),
        ("after the epoch s (checkpoint, best model, archive)", lambda r: f"{r['after_epoch_s']:.1f}"),
        ("dev F1 after the epoch", lambda r: f"{100 * r['dev_f1']:.2f}"),
        ("checkpoint model_state_e1_b0.th MB", lambda r: f"{r['checkpoint_mb']:.1f}"),
        ("model.tar.gz MB", lambda r: f"{r['archive_mb']:.1f}"),
        ("load_archive_safely s", lambda r: f"{r['load_s']:.2f}"),
        ("RSS after imports MB", lambda r: f"{r['rss_before_load_mb']:.0f}"),
        ("RSS after load MB", lambda r: f"{r['rss_after_load_mb']:.0f}"),
        ("test tokens without a vector", lambda r: f"{100 * r['test']['share']:.2f}% ({r['test']['without_vector']:,} of {r['test']['tokens']:,})"),
        ("new-text tokens without a vector", lambda r: f"{100 * r['new_text']['share']:.2f}% ({r['new_text']['without_vector']:,} of {r['new_text']['tokens']:,})"),
    ]
    lines = ["| | " + " | ".join(f"{name} extension" for name in results) + " |",
             "|---|" + "---|" * len(results)]
    lines += [f"| {label} | " + " | ".join(cell(r) for r in results.values()) + " |" for label, cell in rows]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--train", required=True, help="CoNLL training file (eng.train)")
    parser.add_argument("--dev", required=True, help="validation file (eng.testa)")
    parser.add_argument("--test", required=True, help="test file whose tokens are counted (eng.testb)")
    parser.add_argument("--glove", required=True, help="GloVe text file (glove.6B.50d.txt.gz)")
    parser.add_argument("--new-text", required=True, help="plain text file whose tokens are counted")
    parser.add_argument("--config", default=str(REPO / "training_config" / "conll2003_glove_char.jsonnet"))
    parser.add_argument("--work-dir", default="runs/vocabulary_extension")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--step", choices=["train", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--extension", choices=["on", "off"], help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    parser.add_argument("--archive", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step == "train":
        print(json.dumps(train_step(args)))
        return
    if args.step == "load":
        print(json.dumps(load_step(args)))
        return

    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    results: Dict[str, Dict[str, Any]] = {}
    for name, extension in VARIANTS.items():
        run_dir = work / f"{name}_extension"
        trained = run_step("train", args, work / f"{name}_train.log", extension="on" if extension else "off",
                           run_dir=str(run_dir))
        loaded = run_step("load", args, work / f"{name}_load.log", archive=str(run_dir / "model.tar.gz"))
        results[name] = {**trained, **loaded}
        print(json.dumps({"variant": name, **results[name]}), file=sys.stderr, flush=True)
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{Path(args.config).name}, one epoch on {args.train}, 1 thread\n")
    print(table(results))


if __name__ == "__main__":
    main()
