"""
The `ner-predict` subcommand: `allennlp predict` with the `ner` predictor, one output line per
input line (blank and broken lines included) and an output file that only appears when complete.

    allennlp ner-predict ARCHIVE INPUT.jsonl [--output-file F] [--batch-size N]
        [--cuda-device D] [--silent] [--weights-file W] [-o OVERRIDES] [--predictor-args JSON]
        [--max-line-bytes B] [--trust-archive]

Line N of the output answers line N of the input: a prediction object (see
`ner_elmo.predictors.ner_predictor.NerPredictor`), or `{"error": "<why>", "line": N}` for a line
that cannot be tagged. A blank line is such a line (`"error": "blank line"`), so that line counts
always match (`allennlp predict` drops blank lines instead). Lines are split on "\\n" only, as
`wc -l` counts them, and each is decoded on its own: a line that is not UTF-8, longer than
`--max-line-bytes` (read in bounded pieces, never whole), nested deeper than the predictor's
`max_json_depth`, or not an object is an error line, not a crash.

The archive is loaded as the service loads it (`ner_elmo.service.loading`): checked by
`ner_elmo.common.safe_archive` (`--trust-archive` to accept dotted types), activation cache off.

The input is read as a stream (`-` reads standard input; `.gz`/`.bz2`/`.lzma` inputs are
decompressed), `N` lines at a time, and the model sees at most `N` sentences per forward pass.
The output is written to a temporary file beside `--output-file` (`NAME.partial-…`) and renamed
onto it at the end, so an interrupted run never leaves a partial file under the expected name.
Without `--silent`, every output line is also printed to standard output.
"""
import argparse
import json
import sys
from typing import IO, Iterator, List, Optional, Tuple, Union

from allennlp.commands.predict import _PredictManager
from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError, check_for_gpu
from allennlp.common.file_utils import open_compressed
from allennlp.predictors.predictor import JsonDict

from ner_elmo.common.atomic_write import atomic_open
from ner_elmo.common.safe_archive import add_trust_archive_argument
from ner_elmo.predictors.ner_predictor import NerPredictor, UnreadableLine

#: The default `--max-line-bytes`.
MAX_LINE_BYTES = 64 * 2**20


@Subcommand.register("ner-predict")
class NerPredict(Subcommand):
    """
    Tag a JSON-lines file with a trained NER model: one output line per input line.

    Registered as a `Subcommand` with name "ner-predict".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = __doc__.strip().split("\n\n")[0]
        subparser = parser.add_parser(
            self.name,
            description=description,
            help="Tag raw text with a trained NER model: entities with character offsets.",
        )
        subparser.add_argument("archive_file", help="the archived model (model.tar.gz)")
        subparser.add_argument(
            "input_file",
            help='JSON lines: {"text": ...}, {"sentence": ...} or {"tokens": [...]}; - for stdin',
        )
        subparser.add_argument("--output-file", help="where to write the predictions (JSON lines)")
        subparser.add_argument(
            "--batch-size",
            type=int,
            default=32,
            help="input lines read at a time, and sentences per forward pass",
        )
        subparser.add_argument(
            "--cuda-device", type=int, default=-1, help="GPU id (-1: CPU)"
        )
        subparser.add_argument("--silent", action="store_true", help="do not print the predictions")
        subparser.add_argument("--weights-file", help="weights to use instead of the archive's")
        subparser.add_argument(
            "-o",
            "--overrides",
            default="",
            help="a JSON(net) structure overriding the archived config",
        )
        subparser.add_argument(
            "--predictor-args",
            default="",
            help='JSON arguments of the ner predictor, e.g. \'{"max_sentence_tokens": 100}\'',
        )
        subparser.add_argument(
            "--max-line-bytes",
            type=int,
            default=MAX_LINE_BYTES,
            help="a longer input line is an error line (it is never read whole)",
        )
        add_trust_archive_argument(subparser)
        subparser.set_defaults(func=_ner_predict)
        return subparser


class _LinePreservingPredictManager(_PredictManager):
    """
    allennlp's `_PredictManager`, reading every line (blank ones too) with its line number and
    writing exactly one line for each, to `output` and, unless silent, to standard output.
    """

    def __init__(
        self,
        predictor: NerPredictor,
        input_file: str,
        output: Optional[IO[str]],
        batch_size: int,
        print_to_console: bool,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        super().__init__(predictor, input_file, None, batch_size, print_to_console, False)
        self._output_file = output  # `run` closes it
        self._max_line_bytes = max_line_bytes

    def _raw_lines(self) -> Iterator[Union[bytes, int]]:
        """Each line's bytes, or the byte count of a line over `max_line_bytes` (skipped in pieces)."""
        if self._input_file == "-":
            yield from bounded_lines(sys.stdin.buffer, self._max_line_bytes)
        else:
            with open_compressed(self._input_file, "rb", encoding=None) as stream:
                yield from bounded_lines(stream, self._max_line_bytes)

    def _get_json_data(self) -> Iterator[Tuple[int, JsonDict]]:  # type: ignore[override]
        for number, raw in enumerate(self._raw_lines(), start=1):
            if isinstance(raw, int):
                yield number, UnreadableLine(
                    f"the line has {raw} bytes, more than the limit of {self._max_line_bytes} (--max-line-bytes)"
                )
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                yield number, UnreadableLine(f"not valid UTF-8: {error}")
                continue
            if number == 1:
                line = line.lstrip("\ufeff")  # a byte-order mark is not part of the JSON
            yield number, self._predictor.load_line(line)

    def _predict_json(  # type: ignore[override]
        self, batch_data: List[Tuple[int, JsonDict]]
    ) -> Iterator[str]:
        outputs = self._predictor.predict_batch_json([value for _, value in batch_data])
        for (number, _), output in zip(batch_data, outputs):
            if "error" in output:
                output["line"] = number
            yield self._predictor.dump_line(output)

    def _maybe_print_to_console_and_file(
        self, index: int, prediction: str, model_input: str = None
    ) -> None:
        if self._print_to_console:
            sys.stdout.flush()
            sys.stdout.buffer.write(prediction.encode("utf-8"))
        if self._output_file is not None:
            self._output_file.write(prediction)


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


def _ner_predict(args: argparse.Namespace) -> None:
    # Imported here: `ner_elmo.service.loading` needs nothing of the serve extra.
    from ner_elmo.service.loading import load_serving_predictor

    if args.silent and not args.output_file:
        raise ConfigurationError("--silent without --output-file would write nothing")
    if args.batch_size < 1:
        raise ConfigurationError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.max_line_bytes < 1:
        raise ConfigurationError(f"--max-line-bytes must be at least 1, got {args.max_line_bytes}")
    check_for_gpu(args.cuda_device)
    predictor_args = json.loads(args.predictor_args) if args.predictor_args.strip() else {}
    predictor_args["batch_size"] = args.batch_size
    predictor = load_serving_predictor(
        args.archive_file,
        cuda_device=args.cuda_device,
        weights_file=args.weights_file,
        overrides=args.overrides,
        predictor_args=predictor_args,
        batch_size=args.batch_size,
        trust_archive=args.trust_archive,
    )
    if not args.output_file:
        _LinePreservingPredictManager(
            predictor, args.input_file, None, args.batch_size, True, args.max_line_bytes
        ).run()
        return

    with atomic_open(args.output_file, "w", encoding="utf-8", newline="\n") as stream:
        manager = _LinePreservingPredictManager(
            predictor, args.input_file, stream, args.batch_size, not args.silent, args.max_line_bytes
        )
        manager.run()  # closes `stream` when done
