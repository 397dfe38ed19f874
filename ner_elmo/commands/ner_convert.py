"""
`allennlp ner-convert INPUT OUTPUT`: annotated data from one format to another, among CoNLL
column files (any tag scheme), JSON lines of character-offset spans (doccano's and Label
Studio's shape, `ner_elmo.data.span_files`) and spaCy DocBin files.
"""
import argparse
import json
import logging
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

from allennlp.commands.subcommand import Subcommand

from ner_elmo.common.atomic_write import atomic_write_text
from ner_elmo.data.span_files import POLICIES, AlignmentReport, align_record, read_span_records
from ner_elmo.data.tag_schemes import from_spans, normalize_scheme, to_spans
from ner_elmo.data.text_segmentation import TextSegmenter

logger = logging.getLogger(__name__)

FORMATS = ("conll", "jsonl", "docbin", "gmb")


class Sentence(NamedTuple):
    """A sentence between formats: its words, their character offsets in `text`, its entities
    as token spans `(label, start, end)`, extra CoNLL columns, and whether a document starts."""

    text: str
    words: List[str]
    offsets: List[Tuple[int, int]]
    spans: List[Tuple[str, int, int]]
    columns: Dict[str, List[str]]
    document_start: bool


@Subcommand.register("ner-convert")
class NerConvert(Subcommand):
    """
    Converts annotated data: `conll` (column files; tags in any scheme, detected), `jsonl` (one
    JSON object per line with `"text"` and `"label": [[start, end, "TYPE"], ...]`, which doccano
    and this project's `ner_jsonl_spans` reader read; Label Studio's JSON-min is read too) and
    `docbin` (spaCy's `.spacy`), and from the Kaggle GMB `ner_dataset.csv` (`gmb`, one split:
    `ner_dataset.csv#train`, the `ner_gmb_csv` reader's split). The format is taken from the
    file's extension (`.jsonl`/`.json`, `.spacy`, `.csv`, anything else CoNLL) unless
    `--from`/`--to` say otherwise.

    CoNLL to JSON lines writes one line per sentence, with its `"tokens"`, extra columns
    (`"columns"`) and `"document_start"`, so that converting back gives the same file (tags in
    the canonical form of `--scheme`). JSON lines without `"tokens"` (an annotation tool's) are
    split and tokenized as the `ner` predictor does, spans aligned by `--misaligned`.
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Convert NER data among CoNLL, JSON-lines spans (doccano, Label Studio) and spaCy DocBin."
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument("input_file", type=str)
        subparser.add_argument("output_file", type=str)
        subparser.add_argument("--from", dest="source_format", choices=FORMATS, default=None)
        subparser.add_argument("--to", dest="target_format", choices=FORMATS, default=None)
        subparser.add_argument("--scheme", default="BIOUL", help="tag scheme of CoNLL output (default BIOUL)")
        subparser.add_argument(
            "--misaligned", choices=POLICIES, default="error",
            help="spans off token boundaries, overlapping or outside the text: fail (default), widen, or leave out",
        )
        subparser.set_defaults(func=_run)
        return subparser


def _run(args: argparse.Namespace) -> None:
    count, report = convert(
        args.input_file, args.output_file, args.source_format, args.target_format, args.scheme, args.misaligned
    )
    print(f"wrote {count} sentences to {args.output_file}" + (f" ({report.summary()})" if report.summary() else ""))


def format_of(path: str) -> str:
    if path.rpartition("#")[0].endswith(".csv") or path.endswith(".csv"):
        return "gmb"
    if path.endswith((".jsonl", ".json")):
        return "jsonl"
    if path.endswith(".spacy"):
        return "docbin"
    return "conll"


def convert(
    input_file: str,
    output_file: str,
    source: Optional[str] = None,
    target: Optional[str] = None,
    scheme: str = "BIOUL",
    misaligned: str = "error",
) -> Tuple[int, AlignmentReport]:
    """Converts `input_file` to `output_file`; returns the sentence count and what alignment changed."""
    source, target = source or format_of(input_file), target or format_of(output_file)
    scheme = normalize_scheme(scheme)
    report = AlignmentReport()
    if target == "gmb":
        raise ValueError("GMB's ner_dataset.csv is read, not written: convert to conll, jsonl or docbin")
    if source == "conll":
        sentences = list(read_conll(input_file))
    elif source == "gmb":
        sentences = list(read_gmb(input_file))
    else:
        sentences = list(read_spans(input_file, misaligned, report))
    if target == "conll":
        atomic_write_text(output_file, conll_text(sentences, scheme))
    elif target == "jsonl":
        atomic_write_text(output_file, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in span_records(sentences)))
    else:
        write_docbin(sentences, output_file)
    return len(sentences), report


# ------------------------------------------------------------------------------------------
# Reading


def read_conll(path: str) -> Iterator[Sentence]:
    """A CoNLL file's sentences, through the `ner_conll` reader's parser (its checks and errors)."""
    from ner_elmo.data.dataset_readers.ner_conll import NerConllDatasetReader
    from ner_elmo.data.dataset_readers.ner_reader import read_text

    text = read_text(path, "utf-8")
    # The POS and chunk columns travel as extra columns (CoNLL-2003's four: token POS chunk NER).
    first = next((line.split() for line in text.splitlines() if line.strip() and not line.startswith("-DOCSTART-")), [])
    extra = [name for name, width in (("pos", 3), ("chunk", 4)) if len(first) >= width]
    reader = NerConllDatasetReader(tag_label="ner", feature_labels=extra, label_encoding="BIOUL")
    sentences, descriptions, documents = reader._parse(text, path)
    encoded = reader._encode_labels(path, sentences, descriptions)
    previous = 0
    for sentence, labels, document in zip(sentences, encoded, documents):
        offsets, position = [], 0
        for word in sentence.words:
            offsets.append((position, position + len(word)))
            position += len(word) + 1
        yield Sentence(
            " ".join(sentence.words),
            list(sentence.words),
            offsets,
            to_spans(labels["ner"], "BIOUL"),
            {name: sentence.columns[name] for name in extra},
            document != previous,
        )
        previous = document


def read_gmb(path: str) -> Iterator[Sentence]:
    """The sentences of a GMB `ner_dataset.csv` split (`ner_dataset.csv#train`, `#validation`,
    `#test` or `#all`), through the `ner_gmb_csv` reader (its split, checks and errors), with the
    POS column."""
    from ner_elmo.data.dataset_readers.ner_gmb_csv import NerGmbCsvDatasetReader

    if NerGmbCsvDatasetReader.split_path(path)[1] is None:
        raise ValueError(f"{path}: name the GMB split to convert: {path}#train, #validation, #test or #all")
    reader = NerGmbCsvDatasetReader(feature_labels=("pos",), label_encoding="BIOUL")
    for instance in reader.read(path):
        words = [token.text for token in instance["tokens"].tokens]
        offsets, position = [], 0
        for word in words:
            offsets.append((position, position + len(word)))
            position += len(word) + 1
        spans = to_spans(instance["tags"].labels, "BIOUL")
        yield Sentence(" ".join(words), words, offsets, spans, {"pos": list(instance["pos_tags"].labels)}, False)


def read_spans(path: str, misaligned: str, report: AlignmentReport) -> Iterator[Sentence]:
    """The sentences of a span file (`span_files.align_record`: a record's own `"tokens"` when
    it has them, else the `ner` predictor's tokenization), with its extra columns."""
    segmenter = TextSegmenter()
    for record in read_span_records(path):
        columns = record.record.get("columns") if isinstance(record.record.get("columns"), dict) else {}
        for aligned in align_record(record, segmenter, misaligned, report):
            words = [token.text for token in aligned.tokens]
            kept = {name: list(values) for name, values in columns.items() if isinstance(values, list) and len(values) == len(words)}
            offsets = [(token.start, token.end) for token in aligned.tokens]
            yield Sentence(record.text, words, offsets, aligned.spans, kept, bool(record.record.get("document_start")))


# ------------------------------------------------------------------------------------------
# Writing


def conll_text(sentences: List[Sentence], scheme: str) -> str:
    lines: List[str] = []
    for sentence in sentences:
        extra = list(sentence.columns)
        if sentence.document_start:
            lines += [" ".join(["-DOCSTART-"] + ["-X-"] * len(extra) + ["O"]), ""]
        tags = from_spans(sentence.spans, len(sentence.words), scheme)
        for index, (word, tag) in enumerate(zip(sentence.words, tags)):
            lines.append(" ".join([word] + [sentence.columns[name][index] for name in extra] + [tag]))
        lines.append("")
    # Sentences are separated by a blank line; the file ends with its last token line.
    return "\n".join(lines[:-1]) + "\n"


def span_records(sentences: List[Sentence]) -> Iterator[Dict[str, Any]]:
    for sentence in sentences:
        # One line per sentence: its own stretch of the text it came from.
        begin = sentence.offsets[0][0]
        record: Dict[str, Any] = {
            "text": sentence.text[begin : sentence.offsets[-1][1]],
            "label": [
                [sentence.offsets[start][0] - begin, sentence.offsets[end - 1][1] - begin, label]
                for label, start, end in sentence.spans
            ],
            "tokens": sentence.words,
        }
        if sentence.columns:
            record["columns"] = sentence.columns
        if sentence.document_start:
            record["document_start"] = True
        yield record


def write_docbin(sentences: List[Sentence], path: str) -> None:
    import spacy
    from spacy.tokens import Doc, DocBin

    vocab = spacy.blank("xx").vocab
    docs = DocBin()
    for sentence in sentences:
        spaces = [
            sentence.offsets[index + 1][0] > end if index + 1 < len(sentence.offsets) else False
            for index, (_, end) in enumerate(sentence.offsets)
        ]
        doc = Doc(vocab, words=sentence.words, spaces=spaces)
        doc.ents = [doc.char_span(doc[start].idx, doc[end - 1].idx + len(doc[end - 1]), label=label) for label, start, end in sentence.spans]
        docs.add(doc)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    docs.to_disk(path)
