"""
A self-contained HTML page of predicted entities, drawn by spaCy's displaCy in manual mode from
the JSON lines of the `"ner"` predictor (`{"text", "entities": [{"start", "end", "label", ...}]}`
with character offsets into `"text"`), with a colour legend of the entity types present.

A line `{"error": ...}` (a prediction that failed) is shown on the page as an error, titled
with its input line number, never dropped.
"""
import html
import json
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Union

#: Colours of the CoNLL-2003 and GMB entity types (displaCy matches labels case-insensitively).
TYPE_COLORS: Dict[str, str] = {
    "PER": "#aa9cfc",
    "ORG": "#7aecec",
    "LOC": "#ff9561",
    "MISC": "#bfeeb7",
    "GEO": "#ff9561",
    "GPE": "#feca74",
    "TIM": "#bfe1d9",
    "ART": "#f0d0ff",
    "EVE": "#ffeb80",
    "NAT": "#9cc9cc",
}

#: Colours for other types, picked by a stable hash of the type's name.
PALETTE = (
    "#ffd1dc", "#c9e4de", "#f7d9c4", "#dbcdf0", "#faedcb", "#c6def1", "#f2c6de", "#d0f4de",
    "#e2cfc4", "#fcf6bd", "#a9def9", "#e4c1f9",
)

ERROR_TITLE = "line {line}: prediction failed"


class PredictionLine(NamedTuple):
    """One record of a predictions file and its 1-based line number there."""

    line: int
    record: Dict[str, Any]


def read_prediction_lines(path: Union[str, Path]) -> List[PredictionLine]:
    """
    The records of a JSON-lines predictions file; blank lines are skipped. A line that is not a
    JSON object raises `ValueError` naming the file and line.
    """
    path = Path(path)
    records = []
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: not valid JSON ({error})") from error
            if not isinstance(record, dict):
                raise ValueError(f"{path}, line {number}: expected a JSON object")
            records.append(PredictionLine(number, record))
    return records


def entity_colors(labels: Iterable[str]) -> Dict[str, str]:
    """A background colour for each label: `TYPE_COLORS`, else a stable pick from `PALETTE`."""
    colors = {}
    for label in labels:
        known = TYPE_COLORS.get(label.upper())
        colors[label] = known or PALETTE[zlib.crc32(label.upper().encode("utf-8")) % len(PALETTE)]
    return colors


def displacy_docs(lines: Sequence[PredictionLine], source: str = "input") -> List[Dict[str, Any]]:
    """
    displaCy manual-mode docs (`{"text", "ents", "title"}`), one per line. Entity labels are
    HTML-escaped here because displaCy writes them into the page as they are. Entities must lie
    inside the text, must not overlap, and when they carry `"text"` it must equal the text at
    their offsets: otherwise `ValueError` names `source` and the line.
    """
    docs = []
    for line, record in lines:
        where = f"{source}, line {line}"
        if "error" in record:
            docs.append(
                {"text": str(record["error"]), "ents": [], "title": ERROR_TITLE.format(line=line)}
            )
            continue
        if not isinstance(record.get("text"), str) or not isinstance(record.get("entities"), list):
            raise ValueError(f'{where}: expected "text" and "entities" (or "error")')
        text = record["text"]
        parsed = []
        for entity in record["entities"]:
            try:
                start, end, label = int(entity["start"]), int(entity["end"]), str(entity["label"])
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(
                    f'{where}: entity {entity!r} needs integer "start", "end" and a "label"'
                ) from error
            parsed.append((start, end, label, entity))
        ents = []
        previous_end = 0
        for start, end, label, entity in sorted(parsed, key=lambda item: item[:2]):
            if not 0 <= start < end <= len(text):
                raise ValueError(
                    f"{where}: entity {label} [{start}, {end}) lies outside the text "
                    f"({len(text)} characters)"
                )
            if start < previous_end:
                raise ValueError(f"{where}: entity {label} at {start} overlaps the one before it")
            if "text" in entity and entity["text"] != text[start:end]:
                raise ValueError(
                    f"{where}: entity text {entity['text']!r} differs from the text at its "
                    f"offsets [{start}, {end}): {text[start:end]!r}"
                )
            previous_end = end
            ents.append({"start": start, "end": end, "label": html.escape(label)})
        docs.append({"text": text, "ents": ents, "title": None})
    return docs


def legend_html(label_counts: Dict[str, int], colors: Dict[str, str], summary: str) -> str:
    """A small block above the documents: a summary line and one swatch per entity type."""
    swatches = "".join(
        f'<span class="ner-legend-type" style="background: {colors[label]}; padding: 0.3em 0.6em;'
        f' margin: 0 0.4em 0.4em 0; border-radius: 0.35em; display: inline-block;">'
        f"<b>{html.escape(label)}</b> {count}</span>"
        for label, count in label_counts.items()
    )
    return (
        '<div class="ner-legend" style="margin-bottom: 2rem; line-height: 2;">'
        f'<div class="ner-summary">{html.escape(summary)}</div>{swatches}</div>'
    )


def render_entity_page(
    lines: Sequence[PredictionLine], source: str = "input", title: Optional[str] = None
) -> str:
    """
    The HTML page for `lines`: displaCy's entity page (`style="ent", manual=True, page=True`)
    coloured by `entity_colors`, declared UTF-8, with `legend_html` at the top of its body.
    """
    from spacy import displacy

    docs = displacy_docs(lines, source)
    label_counts = Counter(html.unescape(e["label"]) for doc in docs for e in doc["ents"])
    labels = sorted(label_counts)
    colors = entity_colors(labels)
    errors = sum(1 for doc in docs if doc["title"])
    summary = (
        f"{len(docs)} texts, {sum(label_counts.values())} entities"
        + (f", {errors} failed predictions" if errors else "")
    )
    for doc in docs:
        if doc["title"]:
            # displaCy writes titles unescaped: escape, and mark failures in red.
            doc["title"] = (
                f'<span class="ner-error" style="color: #b00020">{html.escape(doc["title"])}</span>'
            )
    page = displacy.render(
        docs,
        style="ent",
        manual=True,
        page=True,
        jupyter=False,
        options={"colors": {html.escape(label): colors[label] for label in labels}},
    )
    page_title = html.escape(title or f"Entities: {source}")
    # displaCy's page declares no charset: without one, browsers garble non-ASCII text.
    page = page.replace(
        "<title>displaCy</title>", f'<meta charset="utf-8">\n<title>{page_title}</title>', 1
    )
    body_start = page.index(">", page.index("<body")) + 1
    legend = legend_html({label: label_counts[label] for label in labels}, colors, summary)
    return page[:body_start] + legend + page[body_start:]
