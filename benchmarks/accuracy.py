"""
Train a config with a seed and a budget, score the best model on the test file with conlleval,
and append one row to a results file: the numbers behind the README's results and docs/lab/results-log.md.

    python benchmarks/accuracy.py training_config/conll2003_glove_char.jsonnet --seed 1 \
        --epochs 30 [-o '{"trainer.patience": 10}'] \
        --runs-dir runs/accuracy --results results/accuracy.jsonl

    python benchmarks/accuracy.py --table results/accuracy.jsonl    # the results log's table

Data and embedding paths come from the environment variables the configs read (docs/configs.md,
"Environment variables"). Training is `allennlp train` (a subprocess, in
`RUNS_DIR/<config>-s<seed>`), with `evaluate_on_test` off: the test file is read once, here,
after training, on the best epoch's model. The budget is `--epochs` (the config's patience still
stops a run early; give `-o '{"trainer.patience": null}'` to run them all). A run stopped with
SIGINT (Ctrl-C on allennlp) is scored from the archive allennlp writes of its best epoch so far,
and its row says `"completed": false`. `--score-only` scores a run the runner trained before
(its commit, wall time and budget are kept in the run's `accuracy_runner.json`) without
training it again. The best epoch's model
(by the config's validation metric) then tags the dev and the test file with `ner-report`
(conlleval, seqeval, per-type table, errors), which also writes `predictions.conll`, one
`token gold predicted` line per token, what conlleval.pl and other scorers read.

A row: config, git commit (with "+dirty" when tracked files differ), seed, budget, epochs run,
best epoch, wall time, dev F1, test F1 (conlleval), per-type test F1, allennlp's span F1 on test
(equal to conlleval's for BIOUL models), dev and test token accuracy, the overrides, and where the
run lives. A tagger without a label encoding (part of speech) has no entities: its span F1 is
null, and the table shows its token accuracy in the dev and test columns.

The row also says which datasets the run's vocabulary was built from (`vocabulary_from`, from the
run's `config.json`: its `datasets_for_vocab_creation`, whose absence means every dataset the
config names) and whether they include the dev or test data (`vocabulary_saw_evaluation_data`):
a test F1 whose vocabulary saw the test file's words is not a test F1. The runner refuses such a
config before training (and such a run in `--score-only`); `--allow-evaluation-vocabulary` runs
it, warns, and the row and the table flag it.
"""
import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]


def relative_to_repo(path: str) -> str:
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    # The results file is this runner's own output, appended to by runs still going: not an edit.
    edits = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results/*.jsonl")
    return commit + ("+dirty" if edits else "")


def train_settings(seed: int, epochs: Optional[int], overrides: Dict[str, Any]) -> Dict[str, Any]:
    """The overrides `allennlp train` is given."""
    settings: Dict[str, Any] = {"random_seed": seed, "numpy_seed": seed, "pytorch_seed": seed,
                                "evaluate_on_test": False, **overrides}
    if epochs is not None:
        settings["trainer.num_epochs"] = epochs
    return settings


def train(config: str, serialization_dir: Path, settings: Dict[str, Any]):
    """Runs `allennlp train` with the overrides `settings`; returns its wall seconds and whether it ran to its end."""
    command = [str(Path(sys.executable).with_name("allennlp")), "train", config, "-s", str(serialization_dir),
               "-f", "-o", json.dumps(settings)]
    log = serialization_dir.parent / f"{serialization_dir.name}.log"
    serialization_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(log, "w") as output:
        process = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT)
    if process.returncode != 0 and not (serialization_dir / "model.tar.gz").is_file():
        raise SystemExit(f"allennlp train failed ({process.returncode}); see {log}")
    # Interrupted (SIGINT, Ctrl-C): allennlp archived the best epoch so far; the row says so.
    return time.time() - started, process.returncode == 0


def vocabulary_from(config: Dict[str, Any]) -> List[str]:
    """The datasets `allennlp train` builds the vocabulary of `config` from (by default, every one it names)."""
    named = ["train"] + [name for name, key in (("validation", "validation_data_path"), ("test", "test_data_path"))
                         if config.get(key) is not None]
    chosen = config.get("datasets_for_vocab_creation")
    return named if chosen is None else [name for name in named if name in chosen]


def saw_evaluation_data(sources: List[str]) -> bool:
    return bool({"validation", "test"} & set(sources))


def check_vocabulary(sources: List[str], allowed: bool, where: str) -> None:
    """Refuses (`SystemExit`) a vocabulary built from dev or test data too, unless `allowed`; then warns."""
    if not saw_evaluation_data(sources):
        return
    message = (f"{where}: the vocabulary is built from {', '.join(sources)} data, so the dev and test scores lean on "
               "their own words; set datasets_for_vocab_creation: ['train'] (as training_config/ does)")
    if not allowed:
        raise SystemExit(message + ", or give --allow-evaluation-vocabulary to run it flagged")
    print(f"WARNING: {message}. The row is flagged (vocabulary_saw_evaluation_data).", file=sys.stderr)


def planned_config(config: str, settings: Dict[str, Any]) -> Dict[str, Any]:
    """`config` with the overrides `allennlp train` will be given, as it will read it."""
    import ner_elmo.plugin  # noqa: F401  (fills in the configs' environment variables, as allennlp's import of it does)
    from allennlp.common import Params

    return Params.from_file(config, json.dumps(settings)).as_dict(quiet=True)


def epochs_run(serialization_dir: Path) -> List[Dict[str, Any]]:
    epochs = sorted(serialization_dir.glob("metrics_epoch_*.json"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    return [json.loads(p.read_text()) for p in epochs]


def score(serialization_dir: Path, data_file: str, name: str) -> Dict[str, Any]:
    from ner_elmo.commands.ner_report import ner_report_from_archive

    return ner_report_from_archive(serialization_dir / "model.tar.gz", data_file, serialization_dir / name)


def run(args) -> Dict[str, Any]:
    config_name = Path(args.config).stem
    serialization_dir = Path(args.runs_dir) / f"{config_name}-s{args.seed}"
    overrides = json.loads(args.overrides) if args.overrides else {}
    # What the row needs from training, kept beside the run so --score-only can score it again.
    training_record = serialization_dir / "accuracy_runner.json"
    if args.score_only:
        if not training_record.is_file():
            raise SystemExit(f"--score-only: {training_record} not found (the runner did not train {serialization_dir})")
        training = json.loads(training_record.read_text())
        if training["overrides"] != overrides or training["epochs"] != args.epochs:
            raise SystemExit(f"--score-only: {serialization_dir} was trained with --epochs {training['epochs']} "
                             f"-o '{json.dumps(training['overrides'])}'; give the same")
    else:
        settings = train_settings(args.seed, args.epochs, overrides)
        check_vocabulary(vocabulary_from(planned_config(args.config, settings)), args.allow_evaluation_vocabulary,
                         args.config)
        commit = git_commit()
        wall, completed = train(args.config, serialization_dir, settings)
        training = {"commit": commit, "wall_seconds": wall, "completed": completed, "epochs": args.epochs,
                    "overrides": overrides}
        training_record.write_text(json.dumps(training) + "\n")
    commit, wall, completed = training["commit"], training["wall_seconds"], training["completed"]
    config = json.loads((serialization_dir / "config.json").read_text())
    # What the run did, whatever the runner planned: allennlp's copy of the config it trained with.
    sources = vocabulary_from(config)
    check_vocabulary(sources, args.allow_evaluation_vocabulary, str(serialization_dir / "config.json"))
    epochs = epochs_run(serialization_dir)
    last = epochs[-1]
    dev = score(serialization_dir, config["validation_data_path"], "dev_report")
    test = score(serialization_dir, config["test_data_path"], "test_report")
    by_type = test["conlleval"]["by_type"]
    # Taggers without a label encoding (part of speech) have no entities: token accuracy is their score.
    spans = config["model"].get("label_encoding") is not None
    row = {
        "config": relative_to_repo(args.config),
        "commit": commit,
        "seed": args.seed,
        "epochs_budget": args.epochs if args.epochs is not None else config["trainer"]["num_epochs"],
        "epochs_run": len(epochs),
        "completed": completed,
        "best_epoch": last.get("best_epoch"),
        "wall_minutes": round(wall / 60, 1),
        "dev_f1": dev["conlleval"]["overall"]["f1"],
        "test_f1": test["conlleval"]["overall"]["f1"],
        "test_f1_per_type": {entity_type: scores["f1"] for entity_type, scores in sorted(by_type.items())},
        "test_span_f1": 100 * test["model_metrics"]["f1-measure-overall"] if spans else None,
        "dev_token_accuracy": dev["conlleval"]["overall"]["token_accuracy"],
        "test_token_accuracy": test["conlleval"]["overall"]["token_accuracy"],
        "overrides": overrides,
        "vocabulary_from": sources,
        "vocabulary_saw_evaluation_data": saw_evaluation_data(sources),
        "run": str(serialization_dir),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    if spans and abs(row["test_f1"] - row["test_span_f1"]) > 0.01:
        # The file's sentences, scored by conlleval, and the model's spans over its instances
        # count the same entities unless a predicted entity crosses a sentence boundary.
        print(f"warning: conlleval test F1 {row['test_f1']:.2f} differs from the model's span F1 "
              f"{row['test_span_f1']:.2f}: predicted entities cross the file's sentence boundaries "
              "or the tags are not valid BIOUL", file=sys.stderr)
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a", encoding="utf-8") as file:
        file.write(json.dumps(row) + "\n")
    return row


def table(results_file: str) -> str:
    """The results log's table (docs/lab/results-log.md), one line per row of `results_file`."""
    lines = ["| config | seed | budget | epochs run (best) | wall min | dev F1 | test F1 | per-type test F1 | commit |",
             "|---|---|---|---|---|---|---|---|---|"]
    for line in Path(results_file).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        budget = f"{row['epochs_budget']} epochs"
        overrides = f" `-o {json.dumps(row['overrides'])}`" if row["overrides"] else ""
        per_type = " ".join(f"{t} {f1:.2f}" for t, f1 in row["test_f1_per_type"].items())
        if row.get("test_span_f1", 0) is None:  # no entities: token accuracy in the score columns
            row["dev_f1"], row["test_f1"], per_type = row["dev_token_accuracy"], row["test_token_accuracy"], "(token accuracy)"
        stopped = "" if row.get("completed", True) else ", stopped"
        # Rows written before the runner recorded it say nothing of their vocabulary.
        vocabulary = {True: " **(vocabulary from dev/test too)**", None: " (vocabulary not recorded)"}.get(
            row.get("vocabulary_saw_evaluation_data"), "")
        lines.append(f"| `{Path(row['config']).name}`{overrides}{vocabulary} | {row['seed']} | {budget} | "
                     f"{row['epochs_run']} ({row['best_epoch'] + 1 if row['best_epoch'] is not None else '-'}{stopped}) | "
                     f"{row['wall_minutes']} | {row['dev_f1']:.2f} | {row['test_f1']:.2f} | {per_type} | "
                     f"{row['commit']} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None, help="most epochs (default: the config's)")
    parser.add_argument("-o", "--overrides", default="", help="allennlp overrides (JSON)")
    parser.add_argument("--runs-dir", default="runs/accuracy")
    parser.add_argument("--results", default="results/accuracy.jsonl")
    parser.add_argument("--table", metavar="RESULTS", help="print the results table of RESULTS and exit")
    parser.add_argument("--allow-evaluation-vocabulary", action="store_true",
                        help="run (or score) a config whose vocabulary is built from dev or test data too, "
                             "flagging its row, instead of refusing it")
    parser.add_argument("--score-only", action="store_true",
                        help="score the run this runner already trained (same config, seed, budget and overrides) "
                             "without training it again, e.g. after scoring failed")
    args = parser.parse_args(argv)
    if args.table:
        print(table(args.table))
        return
    if not args.config:
        parser.error("a config is needed (or --table RESULTS)")
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
