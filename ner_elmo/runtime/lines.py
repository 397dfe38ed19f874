"""
Tagging a JSON-lines file: one output line per input line, blank and broken lines included. The
loop of `allennlp ner-predict` and of the torch-only `ner-elmo predict`; it needs a tagger with
the `ner` predictor's JSON interface (`load_line`, `predict_batch_json`, `dump_line`): the
predictor or a bundle's `Tagger`.
"""
import argparse
import bz2
import gzip
import lzma
import sys
from typing import IO, Iterator, List, Optional, Tuple, Union

from ner_elmo.runtime.inputs import JsonDict, UnreadableLine

#: The default `--max-line-bytes`.
MAX_LINE_BYTES = 64 * 2**20

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".lzma": lzma.open, ".xz": lzma.open}


def bounded_lines(stream: IO[bytes], max_bytes: int) -> Iterator[Union[bytes, int]]:
    """
    The lines of a binary stream (split on b"\\n", kept), each read with at most `max_bytes + 1`
    bytes in memory: a longer line is skipped in pieces and yields its byte count instead.
    """
    while True:
        line = stream.readline(max_bytes + 1)
        if not line:
            return
        if len(line) <= max_bytes:  # the newline counts
            yield line
            continue
        size = len(line)
        while not line.endswith(b"\n"):
            line = stream.readline(max_bytes + 1)
            if not line:
                break
            size += len(line)
        yield size


def raw_lines(input_file: str, max_line_bytes: int) -> Iterator[Union[bytes, int]]:
    """`bounded_lines` of a file (`.gz`, `.bz2`, `.lzma`/`.xz` decompressed) or of stdin (`-`)."""
    if input_file == "-":
        yield from bounded_lines(sys.stdin.buffer, max_line_bytes)
        return
    opener = next((open_ for suffix, open_ in _OPENERS.items() if input_file.endswith(suffix)), open)
    with opener(input_file, "rb") as stream:
        yield from bounded_lines(stream, max_line_bytes)


def numbered_inputs(tagger, input_file: str, max_line_bytes: int) -> Iterator[Tuple[int, JsonDict]]:
    """Each line's number and JSON value (an `UnreadableLine` for one that cannot be read)."""
    for number, raw in enumerate(raw_lines(input_file, max_line_bytes), start=1):
        if isinstance(raw, int):
            yield number, UnreadableLine(
                f"the line has {raw} bytes, more than the limit of {max_line_bytes} (--max-line-bytes)"
            )
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield number, UnreadableLine(f"not valid UTF-8: {error}")
            continue
        if number == 1:
            line = line.lstrip("\ufeff")  # a byte-order mark is not part of the JSON
        yield number, tagger.load_line(line)


def predict_lines(
    tagger,
    input_file: str,
    output: Optional[IO[str]],
    batch_size: int,
    print_to_console: bool,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> int:
    """
    Tags `input_file` `batch_size` lines at a time, writing one line per input line to `output`
    and, when `print_to_console`, to standard output; an output with an "error" gets the input's
    `"line"` number. Returns the number of lines.
    """
    count = 0
    batch: List[Tuple[int, JsonDict]] = []

    def flush() -> None:
        outputs = tagger.predict_batch_json([value for _, value in batch])
        for (number, _), result in zip(batch, outputs):
            if "error" in result:
                result["line"] = number
            line = tagger.dump_line(result)
            if print_to_console:
                sys.stdout.flush()
                sys.stdout.buffer.write(line.encode("utf-8"))
            if output is not None:
                output.write(line)
        batch.clear()

    for item in numbered_inputs(tagger, input_file, max_line_bytes):
        batch.append(item)
        count += 1
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    if print_to_console:
        sys.stdout.flush()
    return count


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments `allennlp ner-predict` and `ner-elmo predict` share (after the model)."""
    parser.add_argument("input_file", help='JSON lines: {"text": ...}, {"sentence": ...} or {"tokens": [...]}; - for stdin')
    parser.add_argument("--output-file", help="where to write the predictions (JSON lines)")
    parser.add_argument("--batch-size", type=int, default=32, help="input lines read at a time, and sentences per forward pass")
    parser.add_argument("--silent", action="store_true", help="do not print the predictions")
    parser.add_argument(
        "--max-line-bytes", type=int, default=MAX_LINE_BYTES, help="a longer input line is an error line (it is never read whole)"
    )


def check_predict_arguments(args: argparse.Namespace) -> None:
    """Raises `ValueError` for arguments that cannot work."""
    if args.silent and not args.output_file:
        raise ValueError("--silent without --output-file would write nothing")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.max_line_bytes < 1:
        raise ValueError(f"--max-line-bytes must be at least 1, got {args.max_line_bytes}")


def run_predict(tagger, args: argparse.Namespace) -> None:
    """Tags `args.input_file` (see `predict_lines`); the output file appears only when complete."""
    from ner_elmo.common.atomic_write import atomic_open

    if not args.output_file:
        predict_lines(tagger, args.input_file, None, args.batch_size, True, args.max_line_bytes)
        return
    with atomic_open(args.output_file, "w", encoding="utf-8", newline="\n") as stream:
        predict_lines(tagger, args.input_file, stream, args.batch_size, not args.silent, args.max_line_bytes)
