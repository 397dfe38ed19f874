"""
`allennlp ner-accuracy`: train a config with a seed and a budget, score the best model on the dev
and test files with conlleval, and append one row, a trial, to the results log.
`allennlp ner-results` (registered in `ner_elmo.commands.ner_results`, computed here): the trials
of a results log grouped by what was trained, with means and standard deviations over seeds;
`--markdown` writes the results page (docs/results.md).

    allennlp ner-accuracy training_config/conll2003_glove_char.jsonnet --seed 1 --epochs 30 \
        [-o '{"trainer.patience": 10}'] --runs-dir runs/accuracy --results results/accuracy.jsonl
    allennlp ner-results [--results results/accuracy.jsonl] [--markdown docs/results.md] [--rows]

**ner-accuracy.** Data and embedding paths come from the environment variables the configs read
(`ner_elmo.environment`). Training is `allennlp train` (a subprocess, in
`RUNS_DIR/<config>-s<seed>`), with `evaluate_on_test` off: the test file is read once, here,
after training, on the best epoch's model. The budget is `--epochs` (the config's patience still
stops a run early; give `-o '{"trainer.patience": null}'` to run them all). A run stopped with
SIGINT (sent to the `allennlp train` process) is scored from the archive allennlp writes of its
best epoch so far, and its row says `"completed": false`. `--score-only` scores a run the runner
trained before (its commit, wall time, budget and identity are kept in the run's
`accuracy_runner.json`) without training it again. The best epoch's model (by the config's
validation metric) then tags the dev and the test file with `ner-report` (conlleval, seqeval,
per-type table, errors), which also writes `predictions.conll`, one `token gold predicted` line
per token, what conlleval.pl and other scorers read.

A row: config, git commit of the package's checkout (with "+dirty" when tracked files differ),
seed, budget, epochs run, best epoch, wall time, dev F1, test F1 (conlleval), per-type test F1,
allennlp's span F1 on test (equal to conlleval's for BIOUL models), dev and test token accuracy,
the overrides, the run's identity (below), and where the run lives. A tagger without a label
encoding (part of speech) has no entities: its span F1 is null, and the summaries show its token
accuracy in the dev and test columns.

The row also says which datasets the run's vocabulary was built from (`vocabulary_from`, from the
run's `config.json`: its `datasets_for_vocab_creation`, whose absence means every dataset the
config names) and whether they include the dev or test data (`vocabulary_saw_evaluation_data`):
a test F1 whose vocabulary saw the test file's words is not a test F1. The runner refuses such a
config before training (and such a run in `--score-only`); `--allow-evaluation-vocabulary` runs
it, warns, and the row and the summaries flag it.

**Identity.** What was trained, recorded before training (so that rows of different models that
share a config name are told apart by their data, not by prose):

* `config_sha256`: the SHA-256 of the config file as written;
* `resolved_config_sha256`: the SHA-256 of the config as allennlp reads it (Jsonnet evaluated
  with its imports, e.g. `ner_elmo.libsonnet`, and the environment variables, the `-o` overrides
  applied; not the runner's seeds, budget and `evaluate_on_test`, recorded on their own), as
  canonical JSON in which each file it reads is named by its SHA-256 instead of its path, so the
  same model on the same data has the same hash on any machine. Any other difference gives
  another hash, including ones that change no weight (`NER_ELMO_ELMO_CACHE`);
* `files`: each embedding, ELMo and data file the resolved config reads (the keys
  `pretrained_file`, `options_file`, `weight_file` anywhere, and the train, validation and test
  data paths), by its place in the config: its name (no directory), SHA-256 and size; a file that
  could not be read has `sha256: null` and the reason. A URL is hashed from allennlp's cached
  download (which training would fetch anyway);
* `environment`: the `NER_ELMO_*` variables the configs read (`ner_elmo.environment.VARIABLES`),
  as they were, a local path reduced to its last part (URLs kept whole).

Files are hashed streaming, and each hash is cached by (absolute path, size, modification time)
in `$NER_ELMO_HASH_CACHE`, by default `~/.cache/ner_elmo/file_sha256.json` (under
`$XDG_CACHE_HOME` when set), so repeated runs do not read a 1 GB file again.

**ner-results.** The results log is append-only: rows are never rewritten, and rows written before
a field existed are read without it. Rows are grouped by identity: config, config hash, resolved
config hash, overrides, the files' hashes and the epoch budget. Rows written before the runner
recorded identity are grouped by config, commit, overrides and budget, their identity shown as
"unrecorded". Each group: n, seeds, mean ± sample standard deviation of dev and test F1, the mean
test F1 per entity type, the epochs, the mean wall time, its commits, and flags (vocabulary built
from dev or test data, or not recorded; runs stopped before their end; token accuracy instead of
F1; uncommitted edits). `--rows` prints one line per trial instead (the table of every run in
docs/lab/results-log.md).
"""
import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple
from urllib.parse import urlparse

from allennlp.commands.subcommand import Subcommand

from ner_elmo.common.atomic_write import atomic_write_text

# The package's checkout (an editable install): its commit is the code a run trained with.
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


@Subcommand.register("ner-accuracy")
class NerAccuracy(Subcommand):
    """
    Trains a config with a seed and an epoch budget, scores its best epoch's model once on the dev
    and test files with conlleval, and appends a row with the run's identity to a results log.

    Registered as a `Subcommand` with name "ner-accuracy".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Train a config with a seed and budget, score dev and test once, append a row to a results log."
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument("config", type=str, help="the training config (Jsonnet or JSON)")
        subparser.add_argument("--seed", type=int, default=1, help="random, numpy and pytorch seed")
        subparser.add_argument("--epochs", type=int, default=None, help="most epochs (default: the config's)")
        subparser.add_argument("-o", "--overrides", type=str, default="", help="allennlp overrides (JSON)")
        subparser.add_argument("--runs-dir", type=str, default="runs/accuracy",
                               help="the run goes to RUNS_DIR/<config>-s<seed>")
        subparser.add_argument("--results", type=str, default="results/accuracy.jsonl",
                               help="the results log the row is appended to")
        subparser.add_argument("--allow-evaluation-vocabulary", action="store_true",
                               help="run (or score) a config whose vocabulary is built from dev or test data too, "
                                    "flagging its row, instead of refusing it")
        subparser.add_argument("--score-only", action="store_true",
                               help="score the run this runner already trained (same config, seed, budget and "
                                    "overrides) without training it again, e.g. after scoring failed")
        subparser.set_defaults(func=ner_accuracy_from_args)
        return subparser


# ---------------------------------------------------------------------------------------------
# Identity: hashes of the config and of the files it reads.


def hash_cache_file() -> Path:
    """Where file hashes are cached: `$NER_ELMO_HASH_CACHE`, else the user's cache directory."""
    if os.environ.get("NER_ELMO_HASH_CACHE"):
        return Path(os.environ["NER_ELMO_HASH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ner_elmo" / "file_sha256.json"


def _read_cache(cache_file: Path) -> Dict[str, Dict[str, Any]]:
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def file_sha256(path: os.PathLike, cache_file: Optional[os.PathLike] = None) -> str:
    """
    The SHA-256 (hex) of a local file, read in chunks; cached by (absolute path, size,
    modification time in ns) in `cache_file` (default `hash_cache_file()`), so an unchanged file
    is read once. A file that changes while it is read is hashed but not cached; a cache that
    cannot be written costs only a later re-read.
    """
    path = Path(path).resolve()
    cache_file = Path(cache_file) if cache_file is not None else hash_cache_file()
    before = path.stat()
    key = str(path)
    entry = _read_cache(cache_file).get(key)
    if entry and entry.get("size") == before.st_size and entry.get("mtime_ns") == before.st_mtime_ns:
        return entry["sha256"]
    with open(path, "rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
        cache = _read_cache(cache_file)  # re-read: another run may have added entries meanwhile
        cache[key] = {"size": after.st_size, "mtime_ns": after.st_mtime_ns, "sha256": digest}
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cache_file, json.dumps(cache, indent=1, sort_keys=True) + "\n")
        except OSError:
            pass
    return digest


#: Keys, anywhere in a config, whose value is a file the model is built from.
EMBEDDING_FILE_KEYS = ("pretrained_file", "options_file", "weight_file")
#: Top-level keys naming the data files.
DATA_FILE_KEYS = ("train_data_path", "validation_data_path", "test_data_path")
#: The overrides the runner adds to the user's for each run: recorded as seed and budget instead.
RUN_SETTINGS = ("random_seed", "numpy_seed", "pytorch_seed", "evaluate_on_test", "trainer.num_epochs")


def files_read(config: Dict[str, Any]) -> Dict[str, str]:
    """Each embedding, ELMo and data file a resolved config names: dotted place -> value."""
    found: Dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            where = f"{prefix}.{key}" if prefix else str(key)
            if key in EMBEDDING_FILE_KEYS and isinstance(value, str):
                if value:
                    found[where] = value
            else:
                walk(value, where)

    walk(config, "")
    for key in DATA_FILE_KEYS:
        if isinstance(config.get(key), str) and config[key]:
            found[key] = config[key]
    return found


def _split_file_value(value: str) -> Tuple[str, str]:
    """(the file, what follows it): `(archive)#member` embeddings URIs and `file.csv#split` data paths."""
    if value.startswith("("):
        from allennlp.modules.token_embedders.embedding import parse_embeddings_file_uri

        main, member = parse_embeddings_file_uri(value)
        return main, f"#{member}" if member else ""
    if "#" in value and not os.path.exists(value):
        main, fragment = value.rsplit("#", 1)
        return main, f"#{fragment}"
    return value, ""


def _is_url(value: str) -> bool:
    return "://" in value and urlparse(value).scheme not in ("", "file")


def describe_file(value: str, cache_file: Optional[os.PathLike] = None) -> Dict[str, Any]:
    """A file a config reads: its name (no directory), SHA-256 and size, or `sha256: None` and why."""
    main, fragment = _split_file_value(value)
    name = (Path(urlparse(main).path).name if _is_url(main) else Path(main).name) + fragment
    try:
        if _is_url(main):
            from ner_elmo.modules.token_embedders.pretrained_files import local_copy

            local = local_copy(main, "file", "file")
        else:
            local = os.path.expanduser(main)
        return {"name": name, "sha256": file_sha256(local, cache_file), "bytes": os.path.getsize(local)}
    except Exception as error:  # the row records it; training reports its own error
        return {"name": name, "sha256": None, "error": f"{type(error).__name__}: {error}"[:300]}


def _set_at(config: Dict[str, Any], where: str, value: Any) -> None:
    *parents, last = where.split(".")
    node: Any = config
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def canonical_sha256(data: Any) -> str:
    """The SHA-256 of `data` as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def environment_settings() -> Dict[str, str]:
    """The configs' `NER_ELMO_*` variables as set now; a local path reduced to its last part."""
    from ner_elmo.environment import VARIABLES

    settings = {}
    for name in VARIABLES:
        value = os.environ.get(name)
        if value is None:
            continue
        if not _is_url(value) and ("/" in value or os.sep in value):
            value = Path(value.rstrip("/" + os.sep)).name
        settings[name] = value
    return settings


def run_identity(config: str, overrides: Dict[str, Any], cache_file: Optional[os.PathLike] = None) -> Dict[str, Any]:
    """The identity fields of a row (module docstring): what `config` with `overrides` trains, on which files."""
    resolved = planned_config(config, overrides)
    named = files_read(resolved)
    files = {where: describe_file(value, cache_file) for where, value in named.items()}
    for where, value in named.items():
        if files[where]["sha256"] is not None:
            _set_at(resolved, where, f"sha256:{files[where]['sha256']}{_split_file_value(value)[1]}")
    return {
        "config_sha256": hashlib.sha256(Path(config).read_bytes()).hexdigest(),
        "resolved_config_sha256": canonical_sha256(resolved),
        "files": files,
        "environment": environment_settings(),
    }


# ---------------------------------------------------------------------------------------------
# The runner.


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=_PACKAGE_DIR, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def repository() -> Optional[Path]:
    """The git checkout the package runs from (an editable install), if any."""
    top = _git("rev-parse", "--show-toplevel")
    return Path(top) if top else None


def relative_to_repo(path: str) -> str:
    repo, resolved = repository(), Path(path).resolve()
    return str(resolved.relative_to(repo)) if repo and resolved.is_relative_to(repo) else str(path)


def git_commit() -> str:
    commit = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    if commit == "unknown":
        return commit
    # The results log and the page generated from it are these commands' own output, appended to
    # by runs still going: not an edit of the code.
    edits = _git("-C", str(repository()), "status", "--porcelain", "--untracked-files=no", "--", ".",
                 ":(exclude)results/*.jsonl", ":(exclude)docs/results.md")
    return commit + ("+dirty" if edits else "")


def train_settings(seed: int, epochs: Optional[int], overrides: Dict[str, Any]) -> Dict[str, Any]:
    """The overrides `allennlp train` is given."""
    settings: Dict[str, Any] = {"random_seed": seed, "numpy_seed": seed, "pytorch_seed": seed,
                                "evaluate_on_test": False, **overrides}
    if epochs is not None:
        settings["trainer.num_epochs"] = epochs
    return settings


def train(config: str, serialization_dir: Path, settings: Dict[str, Any]) -> Tuple[float, bool]:
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
    # Interrupted (SIGINT): allennlp archived the best epoch so far; the row says so.
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
    """`config` with the overrides `settings`, as `allennlp train` will read it."""
    import ner_elmo.plugin  # noqa: F401  (fills in the configs' environment variables, as allennlp's import of it does)
    from allennlp.common import Params

    return Params.from_file(config, json.dumps(settings)).as_dict(quiet=True)


def epochs_run(serialization_dir: Path) -> List[Dict[str, Any]]:
    epochs = sorted(serialization_dir.glob("metrics_epoch_*.json"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    return [json.loads(p.read_text()) for p in epochs]


def score(serialization_dir: Path, data_file: str, name: str) -> Dict[str, Any]:
    from ner_elmo.commands.ner_report import ner_report_from_archive

    return ner_report_from_archive(serialization_dir / "model.tar.gz", data_file, serialization_dir / name)


IDENTITY_FIELDS = ("config_sha256", "resolved_config_sha256", "files", "environment")


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Trains (unless `args.score_only`), scores and appends the row to `args.results`; returns the row."""
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
        identity = run_identity(args.config, overrides)
        commit = git_commit()
        wall, completed = train(args.config, serialization_dir, settings)
        training = {"commit": commit, "wall_seconds": wall, "completed": completed, "epochs": args.epochs,
                    "overrides": overrides, **identity}
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
        # A run trained before the runner recorded identity has none in its record: left out, not guessed.
        **{field: training[field] for field in IDENTITY_FIELDS if field in training},
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


def ner_accuracy_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    row = run(args)
    print(json.dumps(row, indent=2))
    return row


# ---------------------------------------------------------------------------------------------
# The summary.


def read_rows(results_file: os.PathLike) -> List[Dict[str, Any]]:
    """The rows of a results log, in order (blank lines skipped)."""
    lines = Path(results_file).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _scores_tokens(row: Dict[str, Any]) -> bool:
    """A tagger without entities (part of speech): its span F1 is null; token accuracy is its score."""
    return "test_span_f1" in row and row["test_span_f1"] is None


def row_scores(row: Dict[str, Any]) -> Tuple[float, float]:
    """(dev, test): F1, or token accuracy for a tagger without entities."""
    if _scores_tokens(row):
        return row["dev_token_accuracy"], row["test_token_accuracy"]
    return row["dev_f1"], row["test_f1"]


def identity_key(row: Dict[str, Any]) -> Tuple:
    """What a row's group is: the same key, the same model, data and budget (module docstring)."""
    overrides = json.dumps(row.get("overrides") or {}, sort_keys=True)
    budget = row.get("epochs_budget")
    if row.get("config_sha256"):
        files = tuple(sorted((where, described.get("sha256")) for where, described in (row.get("files") or {}).items()))
        return ("recorded", row["config"], row["config_sha256"], row.get("resolved_config_sha256"), overrides, files,
                budget)
    return ("unrecorded", row["config"], row.get("commit"), overrides, budget)


def _mean_sd(values: List[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (None for one value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


class Group(NamedTuple):
    number: int
    key: Tuple
    rows: List[Dict[str, Any]]

    @property
    def recorded(self) -> bool:
        return self.key[0] == "recorded"

    @property
    def identity(self) -> str:
        """A short name of the identity: 12 hex digits of its hash, or "unrecorded"."""
        return canonical_sha256(list(self.key))[:12] if self.recorded else "unrecorded"

    @property
    def config(self) -> str:
        return self.rows[0]["config"]

    @property
    def overrides(self) -> Dict[str, Any]:
        return self.rows[0].get("overrides") or {}

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def seeds(self) -> List[int]:
        return [row["seed"] for row in self.rows]

    @property
    def dev(self) -> Tuple[float, Optional[float]]:
        return _mean_sd([row_scores(row)[0] for row in self.rows])

    @property
    def test(self) -> Tuple[float, Optional[float]]:
        return _mean_sd([row_scores(row)[1] for row in self.rows])

    @property
    def per_type(self) -> Dict[str, float]:
        """The mean test F1 of each entity type, over the rows that have it."""
        values: Dict[str, List[float]] = {}
        for row in self.rows:
            for entity_type, f1 in (row.get("test_f1_per_type") or {}).items():
                values.setdefault(entity_type, []).append(f1)
        return {entity_type: statistics.mean(f1s) for entity_type, f1s in sorted(values.items())}

    @property
    def wall_minutes(self) -> float:
        return statistics.mean(row["wall_minutes"] for row in self.rows)

    @property
    def epochs(self) -> str:
        """The budget, and the epochs run and best epochs (1-based) when they differ from it."""
        budget = self.key[-1]
        run = [row.get("epochs_run") for row in self.rows]
        best = [row["best_epoch"] + 1 if row.get("best_epoch") is not None else "-" for row in self.rows]
        text = str(budget)
        if any(epochs != budget for epochs in run):
            text += f"; ran {', '.join(map(str, run))}"
        return text + f" (best {', '.join(map(str, best))})"

    @property
    def commits(self) -> List[str]:
        return list(dict.fromkeys(row.get("commit", "unknown") for row in self.rows))

    @property
    def flags(self) -> List[str]:
        flags = []
        seen = [row.get("vocabulary_saw_evaluation_data") for row in self.rows]
        if any(flag is True for flag in seen):
            flags.append("vocabulary from dev/test data")
        if any(flag is None for flag in seen):
            flags.append("vocabulary not recorded")
        stopped = sum(1 for row in self.rows if row.get("completed", True) is False)
        if stopped:
            flags.append(f"{stopped} of {self.n} stopped before the end")
        if any(_scores_tokens(row) for row in self.rows):
            flags.append("token accuracy, not F1")
        if any(commit.endswith("+dirty") for commit in self.commits):
            flags.append("uncommitted edits (+dirty)")
        if any(described.get("sha256") is None for row in self.rows for described in (row.get("files") or {}).values()):
            flags.append("a file not hashed")
        return flags


def summarize(rows: List[Dict[str, Any]]) -> List[Group]:
    """The rows grouped by `identity_key`, by config and then in the order of each group's first row."""
    grouped: Dict[Tuple, List[Dict[str, Any]]] = {}
    first: Dict[Tuple, int] = {}
    for index, row in enumerate(rows):
        key = identity_key(row)
        grouped.setdefault(key, []).append(row)
        first.setdefault(key, index)
    keys = sorted(grouped, key=lambda key: (Path(grouped[key][0]["config"]).name, first[key]))
    return [Group(number, key, grouped[key]) for number, key in enumerate(keys, 1)]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _score(mean_sd: Tuple[float, Optional[float]]) -> str:
    mean, sd = mean_sd
    return f"{mean:.2f}" if sd is None else f"{mean:.2f} ± {sd:.2f}"


def _overrides(group: Group) -> str:
    return f"`{_cell(json.dumps(group.overrides))}`" if group.overrides else ""


def groups_table(groups: List[Group]) -> str:
    lines = ["| # | config | overrides | identity | epochs | n | seeds | dev F1 | test F1 | wall min | commits | flags |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for group in groups:
        identity = f"`{group.identity}`" if group.recorded else "unrecorded"
        lines.append(
            f"| {group.number} | `{Path(group.config).name}` | {_overrides(group)} | {identity} | {group.epochs} | "
            f"{group.n} | {', '.join(map(str, group.seeds))} | {_score(group.dev)} | {_score(group.test)} | "
            f"{group.wall_minutes:.1f} | {', '.join(group.commits)} | {'; '.join(group.flags)} |")
    return "\n".join(lines)


def per_type_tables(groups: List[Group]) -> List[Tuple[List[str], str]]:
    """One table per set of entity types (a dataset): (the types, the table of its groups)."""
    by_types: Dict[Tuple[str, ...], List[Group]] = {}
    for group in groups:
        types = tuple(group.per_type)
        if types:
            by_types.setdefault(types, []).append(group)
    tables = []
    for types, members in by_types.items():
        lines = [f"| # | config | overrides | n | {' | '.join(types)} |", "|---" * (4 + len(types)) + "|"]
        for group in members:
            scores = " | ".join(f"{group.per_type[entity_type]:.2f}" for entity_type in types)
            lines.append(f"| {group.number} | `{Path(group.config).name}` | {_overrides(group)} | {group.n} | {scores} |")
        tables.append((list(types), "\n".join(lines)))
    return tables


def identities_table(groups: List[Group]) -> str:
    lines = ["| identity | config sha256 | resolved config sha256 | files (name: sha256) | environment |",
             "|---|---|---|---|---|"]
    for group in groups:
        if not group.recorded:
            continue
        row = group.rows[0]
        files = "<br>".join(f"{'.'.join(where.split('.')[-2:])}: `{_cell(described['name'])}` "
                            f"`{(described.get('sha256') or 'not hashed')[:12]}`"
                            for where, described in sorted((row.get("files") or {}).items()))
        environment = ", ".join(f"{name.removeprefix('NER_ELMO_')}={_cell(value)}"
                                for name, value in sorted((row.get("environment") or {}).items())
                                if name not in _NOT_SHOWN)
        lines.append(f"| `{group.identity}` | `{row['config_sha256'][:12]}` | "
                     f"`{(row.get('resolved_config_sha256') or '-')[:12]}` | {files} | {environment} |")
    return "\n".join(lines)


# The files column names these files; the cache directory is only where activations are kept.
_NOT_SHOWN = ("NER_ELMO_CONLL_TRAIN", "NER_ELMO_CONLL_DEV", "NER_ELMO_CONLL_TEST", "NER_ELMO_GMB_CSV",
              "NER_ELMO_ELMO_OPTIONS", "NER_ELMO_ELMO_WEIGHTS", "NER_ELMO_GLOVE", "NER_ELMO_ELMO_CACHE_DIR")


def summary_text(rows: List[Dict[str, Any]]) -> str:
    """The groups table and the per-type tables (Markdown, also read in a terminal)."""
    groups = summarize(rows)
    parts = [f"{len(rows)} rows in {len(groups)} groups.", "", groups_table(groups)]
    for types, table in per_type_tables(groups):
        parts += ["", f"Test F1 per type ({', '.join(types)}), mean over the group:", "", table]
    if any(group.recorded for group in groups):
        parts += ["", "Identities:", "", identities_table(groups)]
    return "\n".join(parts)


def results_markdown(rows: List[Dict[str, Any]], results_name: str = "results/accuracy.jsonl",
                     page_name: str = "docs/results.md") -> str:
    """The results page: a header, the groups, a table of per-type test F1 per dataset, the identities."""
    groups = summarize(rows)
    parts = [
        "# Results",
        "",
        f"*Generated by `allennlp ner-results --results {results_name} --markdown {page_name}` from the "
        f"append-only trial log `{results_name}` ({len(rows)} trials written by `allennlp ner-accuracy`); "
        "do not edit it by hand: append trials and generate it again.*",
        "",
        "Trials are grouped by identity: the config, the SHA-256 of its file and of the config as resolved "
        "(imports, environment variables and overrides applied, each file it reads named by its SHA-256), the "
        "overrides, the SHA-256 of each embedding, ELMo and data file it reads, and the epoch budget. Trials "
        "written before the runner recorded identity are grouped by config, commit, overrides and budget "
        "(identity \"unrecorded\"): rows of different models may share a config and commit there (e.g. ELMo "
        "files differing only by the environment). Dev and test F1 are conlleval's, as mean ± sample standard "
        "deviation over the group's trials (one trial: no deviation); the epoch is chosen by dev F1 and the test "
        "file is scored once. Epochs: the budget, the epochs run when fewer, and the best epoch of each trial. "
        "A part-of-speech tagger's columns hold its token accuracy. Flags: \"vocabulary from dev/test data\" "
        "(the test F1 leans on the evaluation files' words), \"vocabulary not recorded\" (trials from before "
        "the runner recorded it, built with allennlp's default of every file's words), \"stopped before the "
        "end\" (interrupted, scored from the best epoch so far), \"+dirty\" (tracked files had uncommitted "
        "edits when the trial started).",
        "",
        "## Groups",
        "",
        groups_table(groups),
    ]
    for types, table in per_type_tables(groups):
        parts += ["", f"## Test F1 per type: {', '.join(types)}", "", "Mean over each group's trials.", "", table]
    if any(group.recorded for group in groups):
        parts += ["", "## Identities", "",
                  "The first 12 hex digits of each hash; the full ones are in the trial log.", "",
                  identities_table(groups)]
    return "\n".join(parts) + "\n"


def rows_table(rows: List[Dict[str, Any]]) -> str:
    """One line per row (the older results table)."""
    lines = ["| config | seed | budget | epochs run (best) | wall min | dev F1 | test F1 | per-type test F1 | commit |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        overrides = f" `-o {_cell(json.dumps(row['overrides']))}`" if row.get("overrides") else ""
        per_type = " ".join(f"{t} {f1:.2f}" for t, f1 in (row.get("test_f1_per_type") or {}).items())
        if _scores_tokens(row):
            per_type = "(token accuracy)"
        dev, test = row_scores(row)
        stopped = "" if row.get("completed", True) else ", stopped"
        # Rows written before the runner recorded it say nothing of their vocabulary.
        vocabulary = {True: " **(vocabulary from dev/test too)**", None: " (vocabulary not recorded)"}.get(
            row.get("vocabulary_saw_evaluation_data"), "")
        best = row["best_epoch"] + 1 if row.get("best_epoch") is not None else "-"
        lines.append(f"| `{Path(row['config']).name}`{overrides}{vocabulary} | {row['seed']} | "
                     f"{row['epochs_budget']} epochs | {row['epochs_run']} ({best}{stopped}) | {row['wall_minutes']} | "
                     f"{dev:.2f} | {test:.2f} | {per_type} | {row['commit']} |")
    return "\n".join(lines)


def ner_results_from_args(args: argparse.Namespace) -> str:
    rows = read_rows(args.results)
    if args.markdown:
        page = results_markdown(rows, _display_name(args.results), _display_name(args.markdown))
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.markdown, page)
        print(f"{len(rows)} rows in {len(summarize(rows))} groups written to {args.markdown}")
        return page
    text = rows_table(rows) if args.rows else summary_text(rows)
    print(text)
    return text


def _display_name(path: str) -> str:
    """A file as the page names it: relative to the checkout when inside it, else its name (no machine paths)."""
    repo, resolved = repository(), Path(path).resolve()
    return str(resolved.relative_to(repo)) if repo and resolved.is_relative_to(repo) else resolved.name
