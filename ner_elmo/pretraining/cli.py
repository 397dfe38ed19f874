"""
The command line of `python -m ner_elmo.pretraining` and `allennlp elmo-pretrain` (the same
arguments; see `add_arguments`).

```
python -m ner_elmo.pretraining train --corpus DIR_OR_FILES... --heldout FILE --preset cpu \\
    --output-dir RUN [--max-time 1h] [--max-tokens N] [--recover]
python -m ner_elmo.pretraining train --corpus domain.txt --init-options options.json \\
    --init-weights weights.hdf5 --output-dir RUN          # continued pretraining
torchrun --nproc-per-node 4 -m ner_elmo.pretraining train ...   # data parallel
python -m ner_elmo.pretraining prepare --corpus ... --heldout FILE --output-dir RUN
python -m ner_elmo.pretraining perplexity --run-dir RUN [--heldout FILE]
python -m ner_elmo.pretraining export --run-dir RUN --output-dir DIR [--weights last]
```
"""
import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from ner_elmo.pretraining.presets import PRESETS, preset

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """Seconds from "90", "90s", "45m", "1.5h" or "2d"."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 3600, 45m, 1.5h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def count(text: str) -> int:
    """An integer, with optional k/M/G suffix: "10M" = 10,000,000."""
    match = re.match(r"^\s*(\d+(?:\.\d*)?)\s*([kKmMgG]?)\s*$", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a count: {text!r} (e.g. 5000000, 500k, 10M)")
    factor = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2).lower()]
    return int(round(float(match.group(1)) * factor))


# (flag, TrainingSettings field, type, help) of the settings the command line can set.
_SETTING_FLAGS = [
    ("--batch-size", "batch_size", int, "rows of the global batch (default 128; presets set their own)"),
    ("--steps", "steps", int, "tokens per row and window, the truncated back-propagation length (default 20)"),
    ("--learning-rate", "learning_rate", float, "Adagrad's learning rate (default 0.2)"),
    ("--clip-norm", "clip_norm", float, "gradient-norm clipping (default 10)"),
    ("--dropout", "dropout", float, "dropout (default 0.1)"),
    ("--num-samples", "num_samples", int, "sampled-softmax negatives per step (default 8192; presets set their own)"),
    ("--max-vocab-words", "max_vocab_words", int, "softmax vocabulary: at most this many words (default: all)"),
    ("--min-count", "min_count", int, "softmax vocabulary: words seen at least this often (default 1)"),
    ("--epochs", "epochs", int, "at most this many epochs (default 10)"),
    ("--max-tokens", "max_tokens", count, "stop after this many tokens, e.g. 10M"),
    ("--max-time", "max_time", duration, "stop after this much training time, e.g. 3600, 45m, 1.5h"),
    ("--patience", "patience", int, "stop after this many validations without improvement (default 3)"),
    ("--validate-every-tokens", "validate_every_tokens", count, "also validate every this many tokens, e.g. 2M"),
    ("--heldout-batch-size", "heldout_batch_size", int, "rows of the held-out windows (default 64)"),
    ("--max-heldout-tokens", "max_heldout_tokens", count, "validate on the held-out file's first sentences only"),
    ("--checkpoint-every", "checkpoint_every", duration, "time between checkpoints (default 10m)"),
    ("--log-every", "log_every", duration, "time between progress lines (default 10s)"),
    ("--seed", "seed", int, "seed of the weights, sentence order, dropout and samples (default 0)"),
    ("--tokenizer", "tokenizer", str, "spacy (the ner predictor's, default) or whitespace (pre-tokenized text)"),
    ("--max-sentence-tokens", "max_sentence_tokens", int, "longer sentences are cut (default 200)"),
]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `train`, `prepare`, `perplexity` and `export` commands to `parser`."""
    commands = parser.add_subparsers(dest="pretraining_command", metavar="{train,prepare,perplexity,export}")
    commands.required = True

    train = commands.add_parser("train", help="train a biLM (or resume one) and export it as ELMo files",
                                description="Train an ELMo biLM on plain text and export options.json + lm_weights.hdf5.")
    train.add_argument("--corpus", nargs="+", metavar="PATH",
                       help="plain-text files or folders, UTF-8, one sentence or document per line")
    train.add_argument("--heldout", metavar="FILE", help="held-out text for perplexity after each epoch")
    train.add_argument("--output-dir", "-s", required=True, help="the run directory")
    architecture = train.add_mutually_exclusive_group()
    architecture.add_argument("--preset", choices=sorted(PRESETS), help="architecture and settings preset")
    architecture.add_argument("--options", metavar="FILE", help="an ELMo options.json giving the architecture")
    train.add_argument("--init-options", metavar="FILE", help="continued pretraining: the ELMo's options.json")
    train.add_argument("--init-weights", metavar="FILE", help="continued pretraining: the ELMo's weight file")
    train.add_argument("--recover", action="store_true",
                       help="resume the run in --output-dir (only budget, patience, logging and checkpoint settings may change)")
    for flag, field, kind, help_text in _SETTING_FLAGS:
        train.add_argument(flag, dest=field, type=kind, default=None, help=help_text)
    _add_device_arguments(train)
    train.set_defaults(pretraining_func=_train)

    prepare = commands.add_parser("prepare", help="tokenize a corpus into a run directory (no torch work)")
    prepare.add_argument("--corpus", nargs="+", required=True, metavar="PATH")
    prepare.add_argument("--heldout", metavar="FILE")
    prepare.add_argument("--output-dir", "-s", required=True)
    prepare.add_argument("--tokenizer", default="spacy")
    prepare.add_argument("--max-sentence-tokens", type=int, default=200)
    prepare.set_defaults(pretraining_func=_prepare)

    perplexity = commands.add_parser("perplexity", help="held-out perplexity of a run's weights (full softmax)")
    perplexity.add_argument("--run-dir", required=True)
    perplexity.add_argument("--heldout", metavar="FILE", help="default: the run's held-out file")
    perplexity.add_argument("--weights", choices=("best", "last"), default="best")
    _add_device_arguments(perplexity)
    perplexity.set_defaults(pretraining_func=_perplexity)

    export = commands.add_parser("export", help="write a run's weights as options.json + lm_weights.hdf5")
    export.add_argument("--run-dir", required=True)
    export.add_argument("--output-dir", required=True)
    export.add_argument("--weights", choices=("best", "last"), default="best")
    export.set_defaults(pretraining_func=_export)
    return parser


def _add_device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the GPU when there is one)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")


def _setup_threads(args) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def _settings_from(args, base: Dict[str, Any]):
    from ner_elmo.pretraining.trainer import TrainingSettings

    values = dict(base)
    for _, field, _, _ in _SETTING_FLAGS:
        if getattr(args, field) is not None:
            values[field] = getattr(args, field)
    return TrainingSettings(**values)


def _train(args) -> Dict[str, Any]:
    from ner_elmo.modules.elmo.hdf5_layout import read_options
    from ner_elmo.pretraining.export import training_options
    from ner_elmo.pretraining.trainer import Distributed, Pretraining

    _setup_threads(args)
    distributed = Distributed(args.device)
    try:
        if args.recover:
            given = [flag for flag in ("corpus", "heldout", "preset", "options", "init_options", "init_weights")
                     if getattr(args, flag)]
            if given:
                raise ValueError(f"--recover takes the run's own {', '.join('--' + g.replace('_', '-') for g in given)}; "
                                 "leave them out")
            changes = {field: getattr(args, field) for _, field, _, _ in _SETTING_FLAGS if getattr(args, field) is not None}
            run = Pretraining.recover(args.output_dir, changes, distributed=distributed)
        else:
            if not args.corpus:
                raise ValueError("--corpus is required (or --recover)")
            base: Dict[str, Any] = {}
            options = None
            if args.preset:
                chosen = preset(args.preset)
                options, base = chosen["options"], chosen["training"]
            elif args.options:
                options = training_options(read_options(args.options), source=args.options)
            run = Pretraining.create(args.output_dir, args.corpus, options, _settings_from(args, base),
                                     heldout=args.heldout, init_options=args.init_options,
                                     init_weights=args.init_weights, distributed=distributed)
        return run.train()
    finally:
        distributed.close()


def _prepare(args) -> None:
    from ner_elmo.pretraining import corpus as corpus_lib
    from ner_elmo.pretraining.trainer import default_log

    tokenizer = corpus_lib.SentenceTokenizer(args.tokenizer, args.max_sentence_tokens)
    run_dir = Path(args.output_dir)
    corpus_lib.prepared_text(args.corpus, tokenizer, run_dir / "corpus", frequency_sorted=True, log=default_log)
    if args.heldout:
        corpus_lib.prepared_text([args.heldout], tokenizer, run_dir / "heldout", frequency_sorted=False, log=default_log)


def _perplexity(args) -> Dict[str, Any]:
    from ner_elmo.pretraining.trainer import load_run_model

    _setup_threads(args)
    model, run = load_run_model(args.run_dir, args.weights, args.device or "cpu")
    data = None
    if args.heldout:
        data = run.text_data_for(args.heldout)
    elif run.heldout is None:
        raise ValueError(f"{args.run_dir} has no held-out file: pass --heldout")
    result = run.evaluate(model, data)
    print(json.dumps(result))
    return result


def _export(args) -> None:
    from ner_elmo.pretraining.export import export_elmo
    from ner_elmo.pretraining.trainer import load_run_model

    model, _ = load_run_model(args.run_dir, args.weights)
    options_path, weights_path = export_elmo(model.bilm, args.output_dir)
    print(f"wrote {options_path} and {weights_path}")


def run(args) -> Any:
    """Run the parsed command; a bad input or setting exits with status 1 and one line saying
    what is wrong (its file and line where it has one), without a traceback."""
    try:
        return args.pretraining_func(args)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ner_elmo.pretraining",
        description="Pretrain an ELMo biLM on plain text (torch, numpy and h5py; spaCy for the default tokenizer).",
    )
    add_arguments(parser)
    run(parser.parse_args(argv))
