"""
Texts with entity spans given as character offsets, as annotation tools export them, and their
alignment to the tokens the `ner` predictor makes of the same text.

Formats read (`read_span_records`), told apart per record:

* doccano's JSONL export: `{"text": ..., "label": [[start, end, "TYPE"], ...]}` (also `"labels"`),
  and its entity form `{"text": ..., "entities": [{"start_offset", "end_offset", "label"}]}`;
* Label Studio's JSON-min export: `{"text": ..., "label": [{"start", "end", "labels": ["TYPE"]}]}`,
  as JSON lines or as the one JSON array Label Studio writes;
* spaCy's `.spacy` DocBin files (their `doc.ents`; needs spaCy).

Offsets are Python string indices (code points), `end` exclusive. Each record keeps its line
(the array's item number, the DocBin's doc number) so that errors name it.

Alignment (`align_record`) splits and tokenizes the text exactly as the `ner` predictor does
(`TextSegmenter`) and maps each span onto whole tokens of one sentence. A span that does not
fall on token boundaries, overlaps another, crosses a sentence break or lies outside the text
is handled by the `misaligned` policy: `"error"` raises a `DataFormatError` naming the file,
line and span; `"expand"` widens a span to the tokens it touches (and skips those that still
cannot be kept: overlapping, crossing or outside); `"skip"` leaves the span out. Every change is
counted in an `AlignmentReport`, which readers log; nothing is dropped silently.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from ner_elmo.data.errors import DataFormatError
from ner_elmo.data.text_segmentation import TextSegmenter, TextToken

POLICIES = ("error", "expand", "skip")


class CharSpan(NamedTuple):
    """An entity by character offsets: `[start, end)` of the text, and its type."""

    start: int
    end: int
    label: str


class SpanRecord(NamedTuple):
    """One annotated text of a file: where it is, the text, its spans, and the record itself."""

    path: str
    line: int
    text: str
    spans: List[CharSpan]
    record: Dict[str, Any]


@dataclass
class AlignmentReport:
    """What alignment changed, by kind of span: counts, and the first few examples."""

    expanded: int = 0
    skipped: Dict[str, int] = field(default_factory=dict)
    examples: List[str] = field(default_factory=list)

    def note(self, what: str, where: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(f"{where}: {what}")

    def summary(self) -> str:
        parts = []
        if self.expanded:
            parts.append(f"{self.expanded} span(s) widened to token boundaries")
        parts += [f"{count} span(s) left out ({reason})" for reason, count in sorted(self.skipped.items())]
        return "; ".join(parts)


# ------------------------------------------------------------------------------------------
# Reading


def read_span_records(path: str) -> Iterator[SpanRecord]:
    """The annotated texts of a JSONL, JSON-array (Label Studio) or `.spacy` file, in order."""
    if str(path).endswith(".spacy"):
        yield from _docbin_records(path)
        return
    try:
        content = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataFormatError(path, None, f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    if content.lstrip().startswith("["):  # Label Studio writes one JSON array
        try:
            items = json.loads(content)
        except json.JSONDecodeError as error:
            raise DataFormatError(path, error.lineno, f"not a JSON array of records ({error.msg})") from None
        for number, item in enumerate(items, 1):
            yield _record(path, number, item)
        return
    # Only "\n" ends a line: str.splitlines would also cut at U+0085, U+2028 and the like,
    # which JSON strings may hold unescaped.
    for number, line in enumerate(content.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(path, number, f"not a JSON object ({error.msg}, column {error.colno})") from None
        yield _record(path, number, item)


def _record(path: str, line: int, item: Any) -> SpanRecord:
    if not isinstance(item, dict):
        raise DataFormatError(path, line, f"expected a JSON object with \"text\", got {type(item).__name__}")
    text = item.get("text", item.get("data", {}).get("text") if isinstance(item.get("data"), dict) else None)
    if not isinstance(text, str):
        raise DataFormatError(path, line, "no \"text\" string (doccano, Label Studio JSON-min and ner-convert write one)")
    spans = []
    for key in ("label", "labels", "entities"):
        if key in item:
            spans = [_span(path, line, key, value) for value in _span_list(path, line, key, item[key])]
            break
    return SpanRecord(path, line, text, spans, item)


def _span_list(path: str, line: int, key: str, value: Any) -> list:
    if not isinstance(value, list):
        raise DataFormatError(path, line, f"\"{key}\" must be a list of spans, got {type(value).__name__}")
    return value


def _span(path: str, line: int, key: str, value: Any) -> CharSpan:
    """One span in any of the exports' shapes."""
    start = end = label = None
    if isinstance(value, list) and len(value) == 3:  # doccano: [start, end, "TYPE"]
        start, end, label = value
    elif isinstance(value, dict):
        if "start_offset" in value:  # doccano's entities
            start, end, label = value.get("start_offset"), value.get("end_offset"), value.get("label")
        elif "start" in value:  # Label Studio JSON-min
            start, end = value.get("start"), value.get("end")
            labels = value.get("labels", value.get("label"))
            label = labels[0] if isinstance(labels, list) and len(labels) == 1 else labels
    ok = (
        isinstance(start, int) and not isinstance(start, bool)
        and isinstance(end, int) and not isinstance(end, bool)
        and isinstance(label, str) and label.strip() == label and label != "" and " " not in label
    )
    if not ok:
        raise DataFormatError(
            path, line,
            f"\"{key}\" holds {json.dumps(value)[:80]}: a span is [start, end, \"TYPE\"], "
            "{\"start_offset\", \"end_offset\", \"label\"} or {\"start\", \"end\", \"labels\": [\"TYPE\"]}, "
            "with integer offsets and one type without spaces",
        )
    return CharSpan(start, end, label)


def _docbin_records(path: str) -> Iterator[SpanRecord]:
    import spacy
    from spacy.tokens import DocBin

    try:
        docs = DocBin().from_disk(path).get_docs(spacy.blank("xx").vocab)
        for number, doc in enumerate(docs, 1):
            spans = [CharSpan(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]
            # The doc's own tokens travel with it (ner-convert keeps them; the reader re-tokenizes).
            yield SpanRecord(path, number, doc.text, spans, {"text": doc.text, "tokens": [token.text for token in doc]})
    except (ValueError, OSError, KeyError) as error:
        raise DataFormatError(path, None, f"not a spaCy DocBin file ({error})") from None


# ------------------------------------------------------------------------------------------
# Alignment


class AlignedSentence(NamedTuple):
    """A sentence of tokens and its entities as token spans `(label, start, end)`, `end`
    exclusive (`ner_elmo.data.tag_schemes` spans)."""

    tokens: List[TextToken]
    spans: List[Tuple[str, int, int]]


def align_record(
    record: SpanRecord, segmenter: TextSegmenter, policy: str, report: AlignmentReport
) -> List[AlignedSentence]:
    """The record's sentences with its spans on whole tokens (see the module docstring)."""
    if policy not in POLICIES:
        raise ValueError(f"misaligned must be one of {', '.join(POLICIES)}, not {policy!r}")
    given = record_tokens(record)
    sentences = [given] if given is not None else list(segmenter.sentences(record.text))
    starts = {}  # character offset -> (sentence, token) of the tokens starting there
    ends = {}
    owner = []  # (first char, last char + 1, sentence index, token index) for touching tokens
    for s, sentence in enumerate(sentences):
        for t, token in enumerate(sentence):
            starts[token.start] = (s, t)
            ends[token.end] = (s, t)
            owner.append((token.start, token.end, s, t))
    aligned: List[List[Tuple[str, int, int]]] = [[] for _ in sentences]
    taken: Dict[Tuple[int, int], CharSpan] = {}
    where = f"{record.path}, line {record.line}"
    for span in sorted(record.spans, key=lambda span: (span.start, span.end)):
        quoted = f"[{span.start}, {span.end}) {span.label}"
        if not 0 <= span.start < span.end <= len(record.text):
            _handle(policy, report, record, f"span {quoted} lies outside the text of {len(record.text)} characters", "outside the text")
            continue
        quoted += f" {record.text[span.start:span.end]!r}"
        first, last = starts.get(span.start), ends.get(span.end)
        if first is None or last is None:
            touched = [(s, t) for begin, end, s, t in owner if begin < span.end and end > span.start]
            if not touched:
                _handle(policy, report, record, f"span {quoted} covers no token (only whitespace)", "no token")
                continue
            problem = f"span {quoted} does not fall on token boundaries (tokens: {', '.join(repr(sentences[s][t].text) for s, t in touched[:6])})"
            if policy != "expand":
                _handle(policy, report, record, problem, "not on token boundaries")
                continue
            first, last = touched[0], touched[-1]
            widened = True
        else:
            widened = False
        if first[0] != last[0]:
            _handle(policy, report, record, f"span {quoted} crosses a sentence break", "crosses a sentence break")
            continue
        sentence, begin, end = first[0], first[1], last[1] + 1
        clash = next((other for (s, t), other in taken.items() if s == sentence and begin <= t < end), None)
        if clash is not None:
            _handle(policy, report, record, f"span {quoted} overlaps [{clash.start}, {clash.end}) {clash.label}", "overlaps another")
            continue
        for t in range(begin, end):
            taken[(sentence, t)] = span
        aligned[sentence].append((span.label, begin, end))
        if widened:
            report.expanded += 1
            report.note(f"widened {quoted}", where)
    return [AlignedSentence(tokens, sorted(spans, key=lambda s: s[1])) for tokens, spans in zip(sentences, aligned)]


def record_tokens(record: SpanRecord) -> Optional[List[TextToken]]:
    """
    The record's own tokens, one sentence, when it carries `"tokens"` that spell its text in
    order with only whitespace between them (what `ner-convert` writes from CoNLL, GMB or a
    DocBin: the data's own tokenization); otherwise None (the text is tokenized as the `ner`
    predictor does).
    """
    words = record.record.get("tokens")
    if not isinstance(words, list) or not words or not all(isinstance(word, str) and word for word in words):
        return None
    tokens, position = [], 0
    for word in words:
        start = record.text.find(word, position)
        if start < 0 or record.text[position:start].strip():
            return None
        tokens.append(TextToken(word, start, start + len(word)))
        position = start + len(word)
    return tokens if not record.text[position:].strip() else None


def _handle(policy: str, report: AlignmentReport, record: SpanRecord, problem: str, reason: str) -> None:
    if policy == "error":
        hint = ' (set "misaligned": "expand" or "skip" to change such spans and count them)'
        raise DataFormatError(record.path, record.line, problem + hint)
    report.skipped[reason] = report.skipped.get(reason, 0) + 1
    report.note(f"left out: {problem}", f"{record.path}, line {record.line}")
