"""
What the benchmark scripts share: their command line (`--threads` means the same everywhere),
CoNLL sentences and corpus documents, seeded random ELMo files, an epoch timer for allennlp's
trainer, the resident memory of a process, and the client side of a service under test.

A script is run as `python benchmarks/NAME.py`, so its own folder is on `sys.path` and
`from toolbox import ...` finds this module (no path is edited anywhere). Importing it imports
the standard library only: `gpu_check.py` runs where allennlp is not installed, and each helper
imports torch, h5py, httpx or allennlp when it is called (`EpochTimer`, an allennlp callback, is
defined on first use: `from toolbox import EpochTimer`).

`--threads N [N ...]`: torch's CPU threads; with several counts the script's measurement runs
once per count, in the order given (`each_thread_count`). Each script's default is its own
(`benchmark_parser(threads=...)`; `None`: torch's, or the server's, own default).
"""
import argparse
import itertools
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"

# ------------------------------------------------------------------------------------------
# Command lines

_NO_OPTION = object()


def benchmark_parser(
    doc: str, *, threads: Any = _NO_OPTION, threads_help: str = "", none_means: str = "torch's own"
) -> argparse.ArgumentParser:
    """
    A script's parser: `doc` (its module docstring) as the description, laid out as written.
    With `threads` (a list of counts, or `None`) it has `--threads N [N ...]`, torch threads,
    each count timed in turn; `threads_help` says what the threads are where that is more than
    torch's threads in this process, `none_means` what a `None` default stands for.
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if threads is not _NO_OPTION:
        default = none_means if threads is None else " ".join(map(str, threads))
        what = threads_help or "torch threads"
        parser.add_argument(
            "--threads", type=int, nargs="+", default=None if threads is None else list(threads), metavar="N",
            help=f"{what}; with several counts, each count timed in turn (default: {default})",
        )
    return parser


def each_thread_count(args: argparse.Namespace, set_torch: bool = True) -> Iterator[argparse.Namespace]:
    """
    A copy of `args` for each count of `--threads`, in order, whose `threads` is that one count
    (`None` when the option was left at a `None` default: the runtime's own). With `set_torch`,
    torch's threads are set to the count first.
    """
    for count in args.threads if args.threads is not None else [None]:
        if set_torch and count is not None:
            import torch

            torch.set_num_threads(count)
        yield argparse.Namespace(**{**vars(args), "threads": count})


def add_document_arguments(parser: argparse.ArgumentParser, words: int = 500) -> None:
    """`--corpus`, `--documents` and `--words`: the texts `read_documents` cuts from a corpus."""
    parser.add_argument("--corpus", required=True, type=Path, help="documents separated by blank lines")
    parser.add_argument("--documents", type=int, default=300, help="texts cut from the corpus")
    parser.add_argument("--words", type=int, default=words, help="words of each text")


# ------------------------------------------------------------------------------------------
# Data


def _conll_blocks(path, keep_docstart: bool, columns: Optional[Sequence[str]]) -> Iterator[List[List[str]]]:
    block: List[List[str]] = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields or (fields[0] == "-DOCSTART-" and not keep_docstart):
                if block:
                    yield block
                block = []
                continue
            if columns is not None and len(fields) != len(columns):
                raise SystemExit(f"{path}:{number}: expected {' '.join(columns)!r}, got {line.rstrip(chr(13) + chr(10))!r}")
            block.append(fields)
    if block:
        yield block


def conll_blocks(path, keep_docstart: bool = False, columns: Optional[Sequence[str]] = None) -> List[List[List[str]]]:
    """
    The sentences of a CoNLL column file, each the list of its lines' fields (split on
    whitespace). Blank lines separate sentences; a `-DOCSTART-` line also ends one and is left
    out, unless `keep_docstart` (then it is a line of its block, as in the file). With `columns`
    (their names), a line with another number of fields stops the script, naming the file and
    line. A light reader (no allennlp): the package's `ner_conll` reader gives the same tokens on
    a well-formed file.
    """
    return list(_conll_blocks(path, keep_docstart, columns))


def conll_sentences(path, count: Optional[int] = None) -> List[List[str]]:
    """The first `count` sentences (all by default) of a CoNLL file: their tokens (first column)."""
    blocks = _conll_blocks(path, keep_docstart=False, columns=None)
    return [[fields[0] for fields in block] for block in itertools.islice(blocks, count)]


def read_documents(path: Path, documents: int, words: int, short: int = 0) -> Tuple[List[str], List[str]]:
    """
    `documents` texts of `words` words from the blank-line-separated documents of a corpus
    that have at least that many (cut to `words`), and `short` texts of 25 words from other
    documents. Too few stops the script.
    """
    long_texts: List[str] = []
    short_texts: List[str] = []
    blocks = Path(path).read_text(encoding="utf-8", errors="replace").split("\n\n")
    for block in blocks:
        tokens = block.split()
        if len(long_texts) < documents and len(tokens) >= words:
            long_texts.append(" ".join(tokens[:words]))
        elif len(short_texts) < short and len(tokens) >= 25:
            short_texts.append(" ".join(tokens[:25]))
        if len(long_texts) >= documents and len(short_texts) >= short:
            break
    if len(long_texts) < documents or len(short_texts) < short:
        raise SystemExit(
            f"{path}: only {len(long_texts)} documents of {words}+ words and {len(short_texts)} "
            f"short texts (wanted {documents} and {short})"
        )
    return long_texts, short_texts


# ------------------------------------------------------------------------------------------
# ELMo files


def full_size_elmo_options() -> Dict[str, Any]:
    """The published architecture of the original ("large") ELMo, 2x4096_512_2048cnn_2xhighway."""
    from ner_elmo.pretraining.presets import preset

    return preset("original")["options"]


def random_elmo_files(options: Dict[str, Any], directory, seed: int = 0) -> Tuple[str, str]:
    """
    The paths of `options.json` and `lm_weights.hdf5` in `directory`, holding `options` and
    seeded random weights (`ner_elmo.modules.elmo.weights_io.write_random_elmo`: speed does not
    depend on weight values). Written once: files already there for the same options and seed
    are kept. Needs torch-free h5py and numpy only.
    """
    from ner_elmo.modules.elmo.weights_io import (
        OPTIONS_FILENAME,
        WEIGHTS_FILENAME,
        read_generator_record,
        read_options,
        write_random_elmo,
    )

    directory = Path(directory)
    options_path, weight_path = directory / OPTIONS_FILENAME, directory / WEIGHTS_FILENAME
    try:
        record = read_generator_record(weight_path)
        if read_options(options_path) == options and record["seed"] == seed and record["scale"] == 1.0:
            return str(options_path), str(weight_path)
    except (OSError, ValueError, KeyError):
        pass  # absent, or not ours: written below
    print(f"writing random ELMo weights to {directory} ...", flush=True)
    directory.mkdir(parents=True, exist_ok=True)
    write_random_elmo(options, options_path, weight_path, seed=seed)
    return str(options_path), str(weight_path)


# ------------------------------------------------------------------------------------------
# Training


def training_config(config, env: Dict[str, str]) -> Dict[str, Any]:
    """A Jsonnet training config evaluated as `allennlp train` reads it, `env` over the environment."""
    import _jsonnet

    return json.loads(_jsonnet.evaluate_file(str(config), ext_vars={**os.environ, **env}))


def _epoch_timer_class():
    from allennlp.training.callbacks import TrainerCallback

    @TrainerCallback.register("bench_epoch_timer")
    class EpochTimer(TrainerCallback):
        """
        Times every epoch of allennlp's trainer. Each record (in `records`) holds `epoch` (from
        1), `seconds` (the whole epoch), `train_seconds` (up to its last training batch),
        `validation_seconds` (the rest: validation), `dev_f1` (the validation F1, when
        validated) and, with a `forward_clock` (anything with a growing `seconds`), the
        `forward_seconds` it counted in the epoch. With `jsonl` the records are also appended
        to `epoch_times.jsonl` in the serialization directory (how a run that builds the
        callback from its config, `{"type": "bench_epoch_timer"}`, hands them back).
        """

        def __init__(self, serialization_dir: str, forward_clock: Any = None, jsonl: bool = True) -> None:
            super().__init__(serialization_dir)
            self.records: List[Dict[str, Any]] = []
            self._clock = forward_clock
            self._jsonl = jsonl
            self._epoch_start = self._training_end = time.perf_counter()
            self._clock_start = 0.0

        def _restart(self) -> None:
            self._epoch_start = self._training_end = time.perf_counter()
            self._clock_start = self._clock.seconds if self._clock is not None else 0.0

        def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
            self._restart()

        def on_batch(self, trainer, batch_inputs, batch_outputs, batch_metrics, epoch, batch_number,
                     is_training, is_primary=True, batch_grad_norm=None, **kwargs) -> None:
            if is_training:
                self._training_end = time.perf_counter()

        def on_epoch(self, trainer, metrics, epoch: int, is_primary: bool = True, **kwargs) -> None:
            now = time.perf_counter()
            record = {"epoch": epoch + 1, "seconds": now - self._epoch_start,
                      "train_seconds": self._training_end - self._epoch_start,
                      "validation_seconds": now - self._training_end,
                      "dev_f1": metrics.get("validation_f1-measure-overall")}
            if self._clock is not None:
                record["forward_seconds"] = self._clock.seconds - self._clock_start
            self.records.append(record)
            if self._jsonl:
                with open(os.path.join(self.serialization_dir, "epoch_times.jsonl"), "a") as file:
                    file.write(json.dumps(record) + "\n")
            self._restart()

    return EpochTimer


def __getattr__(name: str):
    if name == "EpochTimer":  # allennlp is imported (and the callback registered) on first use
        globals()["EpochTimer"] = _epoch_timer_class()
        return globals()["EpochTimer"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------------------------------
# Processes


def rss_mib(pid="self") -> float:
    """
    The resident memory (VmRSS) of a process in MiB: this one (`"self"`) or another by its id
    (a server, a child). Self-contained, so that a `python -c` child can run its source
    (`inspect.getsource`) without importing anything. Where there is no `/proc` (not Linux),
    this process's peak (`ru_maxrss`) stands in for `"self"`.
    """
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        if pid != "self" or os.path.exists("/proc"):
            raise
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def peak_rss_mib() -> float:
    """This process's peak resident memory (`ru_maxrss`, a high-water mark) in MiB (Linux: KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------
# A service under test

#: The service reads only JSON bodies (415 otherwise).
JSON_HEADERS = {"Content-Type": "application/json"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(url: str, server, timeout: float = 300) -> None:
    """Until the server's /readyz answers 200 (it must not exit, nor take longer than `timeout`)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        assert server.poll() is None, "the server exited"
        assert time.monotonic() < deadline, f"the server was not ready within {timeout:g} s"
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
