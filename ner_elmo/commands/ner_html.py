"""
The `ner-html` subcommand: a self-contained HTML page of entities highlighted by type.

    allennlp ner-html predictions.jsonl --output page.html
    allennlp ner-html texts.txt --archive model.tar.gz --output page.html

The first form renders the JSON lines the `"ner"` predictor wrote (`allennlp predict` or
`allennlp ner-predict`); the second predicts first, from a text file (one text per non-blank
line) or a `.jsonl`/`.json` file of predictor inputs (one JSON object per line). The model is
loaded as `ner-predict` and `ner-serve` load it (`ner_elmo.service.loading`): an archive through
`ner_elmo.common.safe_archive` with the ELMo activation cache off, or a bundle directory.
"""
import argparse
import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from allennlp.commands.subcommand import Subcommand

from ner_elmo.common.atomic_write import atomic_write_text
from ner_elmo.common.safe_archive import add_trust_archive_argument
from ner_elmo.runtime.inputs import UnreadableLine
from ner_elmo.reporting.entity_html import (
    PredictionLine,
    read_prediction_lines,
    render_entity_page,
)

logger = logging.getLogger(__name__)

JSON_SUFFIXES = (".jsonl", ".json")
#: Sentences per forward pass of the model: the `ner` predictor's default, whatever `--batch-size`.
PREDICTOR_BATCH_SIZE = 32


@Subcommand.register("ner-html")
class NerHtml(Subcommand):
    """
    Writes an HTML page (spaCy displaCy's entity style, plus a colour legend) of the entities in
    predictor output, or of the entities an archived model predicts for a file of texts. Failed
    predictions appear on the page as errors with their input line number.

    Registered as a `Subcommand` with name "ner-html".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Render predicted entities as a self-contained HTML page (displaCy)."
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument(
            "input_file",
            type=str,
            help="predictor output (JSON lines); with --archive: texts, one per line, or a "
            ".jsonl file of predictor inputs",
        )
        subparser.add_argument("--output", type=str, required=True, help="the HTML file to write")
        subparser.add_argument(
            "--archive", type=str, default=None,
            help="predict INPUT with this model first (an archive, or a bundle directory)",
        )
        subparser.add_argument(
            "--predictor", type=str, default=None, help="predictor name (default: the archive's)"
        )
        subparser.add_argument("--cuda-device", type=int, default=-1, help="GPU id, -1 for CPU")
        subparser.add_argument("--batch-size", type=int, default=32, help="texts per batch")
        subparser.add_argument("--title", type=str, default=None, help="the page's title")
        add_trust_archive_argument(subparser)
        subparser.set_defaults(func=ner_html_from_args)
        return subparser


def ner_html_from_args(args: argparse.Namespace) -> Path:
    return write_entity_page(
        args.input_file,
        args.output,
        archive_file=args.archive,
        predictor_name=args.predictor,
        cuda_device=args.cuda_device,
        batch_size=args.batch_size,
        title=args.title,
        trust_archive=args.trust_archive,
    )


def write_entity_page(
    input_file: Union[str, Path],
    output_file: Union[str, Path],
    archive_file: Optional[Union[str, Path]] = None,
    predictor_name: Optional[str] = None,
    cuda_device: int = -1,
    batch_size: int = 32,
    title: Optional[str] = None,
    trust_archive: bool = False,
) -> Path:
    """Renders `input_file` to `output_file`, predicting it with `archive_file` first if given."""
    input_file = Path(input_file)
    if archive_file is None:
        lines = read_prediction_lines(input_file)
    else:
        lines = predict_lines(
            archive_file,
            input_file,
            predictor_name,
            cuda_device=cuda_device,
            batch_size=batch_size,
            trust_archive=trust_archive,
        )
    page = render_entity_page(lines, source=str(input_file), title=title)
    output_file = Path(output_file)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output_file, page)  # whole or absent, as ner-predict's output
    failed = sum(1 for line in lines if "error" in line.record)
    print(f"{len(lines)} texts ({failed} failed) rendered to {output_file}")
    return output_file


def read_predictor_inputs(input_file: Path) -> List[PredictionLine]:
    """
    Predictor inputs with their line numbers: each line of a `.jsonl`/`.json` file, or
    `{"text": line}` for each non-blank line of any other file. A `.jsonl` line that is not a
    JSON object becomes `{"error": why}` (shown on the page), as the `"ner"` predictor does.
    """
    inputs = []
    with input_file.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            if input_file.suffix.lower() in JSON_SUFFIXES:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    record = UnreadableLine(f"not valid JSON: {error}")
                else:
                    if not isinstance(record, dict):
                        record = UnreadableLine("not a JSON object")
            else:
                record = {"text": line.rstrip("\r\n")}
            inputs.append(PredictionLine(number, record))
    return inputs


def predict_lines(
    archive_file: Union[str, Path],
    input_file: Path,
    predictor_name: Optional[str] = None,
    cuda_device: int = -1,
    batch_size: int = 32,
    trust_archive: bool = False,
) -> List[PredictionLine]:
    """
    The predictor's output for each input line, in input order. A batch that fails is retried
    one input at a time, so one bad input becomes one `{"error": ...}` record, not a lost batch.
    The model (an archive, or a bundle directory) is loaded as `ner-predict` loads it
    (`command_model_loader`): an archive safely and with the activation cache off, its
    `predictor_name` predictor built (`None`: the archive's default).
    """
    from ner_elmo.service.loading import command_model_loader

    model = argparse.Namespace(
        archive_file=str(archive_file), weights_file=None, overrides="", cuda_device=cuda_device,
        trust_archive=trust_archive,
    )
    predictor = command_model_loader(model, PREDICTOR_BATCH_SIZE, {}, predictor_name=predictor_name)()
    inputs = read_predictor_inputs(input_file)
    readable = [item for item in inputs if not isinstance(item.record, UnreadableLine)]
    predicted: Dict[int, Dict[str, Any]] = {}
    for begin in range(0, len(readable), batch_size):
        batch = readable[begin : begin + batch_size]
        try:
            results = predictor.predict_batch_json([dict(item.record) for item in batch])
        except Exception:  # noqa: BLE001 - isolate the failing input below
            results = [_predict_one(predictor, item) for item in batch]
        predicted.update((item.line, dict(result)) for item, result in zip(batch, results))
    return [
        PredictionLine(item.line, predicted.get(item.line, dict(item.record))) for item in inputs
    ]


def _predict_one(predictor: Any, item: PredictionLine) -> Dict[str, Any]:
    try:
        return predictor.predict_json(item.record)
    except Exception as error:  # noqa: BLE001 - shown on the page as this line's error
        logger.warning("line %d: prediction failed: %s", item.line, error)
        return {"error": f"{type(error).__name__}: {error}"}
