"""
The `ner-report` subcommand: a full entity-level evaluation report of an archived tagger.

    allennlp ner-report model.tar.gz eng.testb --output-dir report/ [--cuda-device 0]

writes `conlleval.txt`, `seqeval_report.txt`, `token_report.txt`, `per_type.csv`,
`confusion.csv`, `confusion.png`, `errors.txt` and `metrics.json` into the output directory
(see `ner_elmo.reporting.report_files.write_ner_report`) and prints a summary.
"""
import argparse
import logging
from itertools import islice
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Union

from allennlp.commands.subcommand import Subcommand
from allennlp.common import Params
from allennlp.common.params import parse_overrides, with_overrides
from allennlp.data import DatasetReader, Instance
from allennlp.models import Model
from allennlp.models.archival import Archive

from ner_elmo.common.safe_archive import add_trust_archive_argument, load_archive_safely

from ner_elmo.reporting.report_files import format_summary, write_ner_report

logger = logging.getLogger(__name__)


@Subcommand.register("ner-report")
class NerReport(Subcommand):
    """
    Reads a data file with the archive's validation dataset reader, tags it with the archived
    model's own decoding, and writes conlleval's report, seqeval's (default and strict modes),
    a per-tag token report, per-type CSV, an entity-type confusion matrix (CSV and PNG), every
    entity error with its sentence, and all numbers as JSON.

    Registered as a `Subcommand` with name "ner-report".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Write an entity-level evaluation report of an archived NER model."
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument("archive_file", type=str, help="the model archive (model.tar.gz)")
        subparser.add_argument("input_file", type=str, help="the labelled data to evaluate on")
        subparser.add_argument(
            "--output-dir", type=str, required=True, help="directory for the report files"
        )
        subparser.add_argument("--cuda-device", type=int, default=-1, help="GPU id, -1 for CPU")
        subparser.add_argument("--batch-size", type=int, default=32, help="sentences per batch")
        subparser.add_argument(
            "--dataset-reader-override",
            type=str,
            default="",
            help="JSON(net) overrides of the validation dataset reader's parameters, e.g. "
            '\'{"coding_scheme": "IOB1"}\'',
        )
        add_trust_archive_argument(subparser)
        subparser.set_defaults(func=ner_report_from_args)
        return subparser


def ner_report_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    return ner_report_from_archive(
        args.archive_file,
        args.input_file,
        args.output_dir,
        cuda_device=args.cuda_device,
        batch_size=args.batch_size,
        dataset_reader_override=args.dataset_reader_override,
        trust_archive=args.trust_archive,
    )


def ner_report_from_archive(
    archive_file: Union[str, Path],
    input_file: Union[str, Path],
    output_dir: Union[str, Path],
    cuda_device: int = -1,
    batch_size: int = 32,
    dataset_reader_override: Union[str, Dict[str, Any]] = "",
    trust_archive: bool = False,
) -> Dict[str, Any]:
    """
    Loads the archive (`ner_elmo.common.safe_archive`), tags `input_file`, writes the report;
    returns `metrics.json`'s content.
    """
    archive = load_archive_safely(str(archive_file), cuda_device=cuda_device, trust_archive=trust_archive)
    reader = validation_reader(archive, dataset_reader_override)
    tagged = tag_dataset(archive.model, reader.read(str(input_file)), batch_size=batch_size)
    if not tagged.tokens:
        raise ValueError(f"{input_file}: the dataset reader produced no instances")
    metrics = write_ner_report(
        output_dir,
        tagged.tokens,
        tagged.gold,
        tagged.predicted,
        model_metrics=tagged.model_metrics,
        info={
            "archive": str(archive_file),
            "input_file": str(input_file),
            "gold_tags_unknown_to_model": tagged.unknown_gold_tags,
        },
        # crf_tagger knows its tags' scheme; other taggers' tags are inspected.
        label_encoding=getattr(archive.model, "label_encoding", None) or "auto",
    )
    print(format_summary(metrics, output_dir))
    return metrics


def validation_reader(
    archive: Archive, overrides: Union[str, Dict[str, Any]] = ""
) -> DatasetReader:
    """The archive's validation dataset reader, rebuilt with `overrides` when there are any."""
    if not overrides:
        return archive.validation_dataset_reader
    if isinstance(overrides, str):
        overrides = parse_overrides(overrides)
    config = archive.config.as_dict(quiet=True)
    reader_params = config.get("validation_dataset_reader", config["dataset_reader"])
    return DatasetReader.from_params(Params(with_overrides(reader_params, overrides)))


class TaggedDataset(NamedTuple):
    tokens: List[List[str]]
    gold: List[List[str]]
    predicted: List[List[str]]
    #: The model's metrics over the data; empty when some gold tags are unknown to the model.
    model_metrics: Dict[str, float]
    #: Gold tags the model's label vocabulary lacks (it can never predict them).
    unknown_gold_tags: List[str]


def tag_dataset(
    model: Model, instances: Iterable[Instance], batch_size: int = 32
) -> TaggedDataset:
    """
    Tags instances in data order with the model's own decoding (`forward_on_instances`, whose
    `make_output_human_readable` gives tag strings), keeping each instance's tokens and gold
    `"tags"`. The model also sees the gold tags, so its metrics over the data come back too,
    as `allennlp evaluate` would give them; a batch with a gold tag outside the model's label
    vocabulary (data with other entity types) is tagged without them, and the model's metrics,
    then partial, are left out.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    model.eval()
    model.get_metrics(reset=True)
    known_tags = model.vocab.get_token_to_index_vocabulary(
        getattr(model, "label_namespace", "labels")
    )
    tokens: List[List[str]] = []
    gold: List[List[str]] = []
    predicted: List[List[str]] = []
    unknown: set = set()
    count = 0
    for batch in _batches(instances, batch_size):
        batch_tokens, batch_gold = [], []
        for instance in batch:
            count += 1
            if "tags" not in instance.fields:
                raise ValueError(
                    f"instance {count} has no gold \"tags\" field: ner-report needs labelled data"
                )
            batch_tokens.append([token.text for token in instance.fields["tokens"].tokens])
            batch_gold.append(list(instance.fields["tags"].labels))
        batch_unknown = {tag for tags in batch_gold for tag in tags if tag not in known_tags}
        lengths = [_sentence_lengths(instance) for instance in batch]
        if batch_unknown:
            unknown |= batch_unknown
            batch = [
                Instance({name: field for name, field in instance.fields.items() if name != "tags"})
                for instance in batch
            ]
        outputs = model.forward_on_instances(batch)
        for words, gold_tags, output, sentence_lengths in zip(batch_tokens, batch_gold, outputs, lengths):
            # allennlp's simple_tagger also tags the batch's padding, which comes last.
            predicted_tags = list(output["tags"])[: len(words)]
            # Sentences a reader joined (document context) are reported as the file has them.
            tokens.extend(split_lengths(words, sentence_lengths))
            gold.extend(split_lengths(gold_tags, sentence_lengths))
            predicted.extend(split_lengths(predicted_tags, sentence_lengths))
    model_metrics = model.get_metrics(reset=True)
    if unknown:
        logger.warning(
            "gold tags unknown to the model: %s; the model's own metrics are left out",
            ", ".join(sorted(unknown)),
        )
        model_metrics = {}
    return TaggedDataset(tokens, gold, predicted, model_metrics, sorted(unknown))


def _sentence_lengths(instance: Instance) -> List[int]:
    """The lengths of the sentences a reader joined into `instance` (one, when it joined none)."""
    metadata = instance.fields.get("metadata")
    lengths = metadata.metadata.get("sentence_lengths") if metadata is not None else None
    return list(lengths) if lengths else [len(instance.fields["tokens"].tokens)]


def split_lengths(sequence: List[str], lengths: List[int]) -> List[List[str]]:
    """`sequence` cut into consecutive parts of `lengths`."""
    parts, start = [], 0
    for length in lengths:
        parts.append(sequence[start:start + length])
        start += length
    return parts


def _batches(instances: Iterable[Instance], size: int) -> Iterator[List[Instance]]:
    iterator = iter(instances)
    while True:
        batch = list(islice(iterator, size))
        if not batch:
            return
        yield batch
