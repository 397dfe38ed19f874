"""
Entity-level error analysis: which gold entities a tagger found, confused, cut wrongly, missed,
or invented.

Entities are conlleval's chunks (`ner_elmo.scoring.conlleval`'s reading of the tags, after its
`label_encoding` mapping, e.g. BIOUL's `U-`/`L-` to `B-`/`I-`), so every count here agrees with
conlleval's found/correct counts, ill-formed tag sequences included.
"""
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from ner_elmo.data.tag_schemes import chunk_spans
from ner_elmo.reporting.figures import pyplot, save_png
from ner_elmo.scoring.conlleval import aligned_sentences, split_tag, to_conlleval_tags

#: Column of the confusion matrix for gold entities whose boundaries no prediction has.
MISSED = "MISSED"
#: Row of the confusion matrix for predicted entities whose boundaries no gold entity has.
SPURIOUS = "SPURIOUS"


class EntitySpan(NamedTuple):
    """An entity over tokens `start` (inclusive) to `end` (exclusive) of one sentence."""

    start: int
    end: int
    label: str


def entity_spans(tags: Sequence[str], label_encoding: Optional[str] = None) -> List[EntitySpan]:
    """
    The conlleval chunks of one sentence's tags, in order. `label_encoding` is as for
    `ner_elmo.scoring.conlleval.evaluate`: `"BIOUL"`/`"BIOES"` tags are mapped to BIO first;
    `None` reads BIO and IOB1 as they are.
    """
    read = [split_tag(tag) for tag in to_conlleval_tags(tags, label_encoding)]
    return [EntitySpan(start, end, label) for label, start, end in chunk_spans(read)]


class EntityConfusion:
    """
    Entity-type confusion over spans matched by their exact token boundaries.

    For each sentence, a gold entity and a predicted entity that cover exactly the same tokens
    are "matched" and counted in cell `(gold type, predicted type)`: the diagonal holds the
    correct entities, off-diagonal cells the right spans with the wrong type. A gold entity whose
    boundaries no predicted entity has is counted in `(gold type, MISSED)`; a predicted entity
    whose boundaries no gold entity has is counted in `(SPURIOUS, predicted type)`. A prediction
    with wrong boundaries is therefore one MISSED plus one SPURIOUS, as conlleval scores it.

    Hence row sums (without the SPURIOUS row) are the gold counts per type, column sums (without
    the MISSED column) the predicted counts per type, and the diagonal conlleval's correct counts.

    # Parameters

    labels : `List[str]`
        The entity types, in row/column order.
    counts : `Dict[Tuple[str, str], int]`
        `(gold row, predicted column) -> count`; absent cells are 0.
    """

    def __init__(self, labels: List[str], counts: Dict[Tuple[str, str], int]) -> None:
        self.labels = list(labels)
        self.counts = dict(counts)

    @property
    def rows(self) -> List[str]:
        return self.labels + [SPURIOUS]

    @property
    def columns(self) -> List[str]:
        return self.labels + [MISSED]

    def count(self, gold: str, predicted: str) -> int:
        return self.counts.get((gold, predicted), 0)

    def matrix(self) -> List[List[int]]:
        return [[self.count(row, column) for column in self.columns] for row in self.rows]

    def to_dict(self) -> Dict[str, Dict[str, int]]:
        """`{gold row: {predicted column: count}}` with every cell."""
        return {row: {col: self.count(row, col) for col in self.columns} for row in self.rows}

    def csv_rows(self) -> List[List[Union[str, int]]]:
        """A header row (`gold\\predicted`, then the columns) and one row per gold row."""
        header: List[Union[str, int]] = ["gold\\predicted"] + list(self.columns)
        return [header] + [[row] + values for row, values in zip(self.rows, self.matrix())]


def entity_confusion(
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    label_encoding: Optional[str] = None,
) -> EntityConfusion:
    """The `EntityConfusion` of a corpus: `gold[i]` and `predicted[i]` tag sentence `i`."""
    _check_aligned(gold, predicted)
    counts: Counter = Counter()
    labels = set()
    for gold_tags, predicted_tags in zip(gold, predicted):
        gold_by_bounds = {
            (s.start, s.end): s.label for s in entity_spans(gold_tags, label_encoding)
        }
        pred_by_bounds = {
            (s.start, s.end): s.label for s in entity_spans(predicted_tags, label_encoding)
        }
        labels.update(gold_by_bounds.values())
        labels.update(pred_by_bounds.values())
        for bounds, gold_label in gold_by_bounds.items():
            counts[(gold_label, pred_by_bounds.get(bounds, MISSED))] += 1
        for bounds, pred_label in pred_by_bounds.items():
            if bounds not in gold_by_bounds:
                counts[(SPURIOUS, pred_label)] += 1
    return EntityConfusion(sorted(labels), dict(counts))


class EntityError(NamedTuple):
    """
    One entity the tagger got wrong in sentence `sentence` (0-based).

    `kind` is `"type"` (same tokens, other type), `"boundary"` (overlapping tokens, other
    boundaries; the type may differ too), `"missed"` (gold entity, no `pred`) or `"spurious"`
    (predicted entity, no `gold`).
    """

    kind: str
    sentence: int
    gold: Optional[EntitySpan]
    pred: Optional[EntitySpan]


ERROR_KINDS = ("type", "boundary", "missed", "spurious")


def sentence_errors(
    gold_tags: Sequence[str],
    predicted_tags: Sequence[str],
    sentence: int = 0,
    label_encoding: Optional[str] = None,
) -> List[EntityError]:
    """
    Every wrong entity of one sentence. Each gold entity and each predicted entity that is not
    exactly correct appears in exactly one error: a gold and a predicted entity are paired (as a
    `"type"` error when they cover the same tokens, else as a `"boundary"` error when they
    overlap, taking the first free overlapping prediction); unpaired gold entities are
    `"missed"`, unpaired predictions `"spurious"`. Errors come in order of their first token.
    """
    gold = set(entity_spans(gold_tags, label_encoding))
    pred = set(entity_spans(predicted_tags, label_encoding))
    gold_wrong = sorted(gold - pred)
    pred_wrong = sorted(pred - gold)
    errors: List[EntityError] = []
    free = list(pred_wrong)
    unpaired_gold = []
    for g in gold_wrong:
        same = [p for p in free if (p.start, p.end) == (g.start, g.end)]
        if same:
            free.remove(same[0])
            errors.append(EntityError("type", sentence, g, same[0]))
        else:
            unpaired_gold.append(g)
    for g in unpaired_gold:
        overlapping = [p for p in free if p.start < g.end and g.start < p.end]
        if overlapping:
            free.remove(overlapping[0])
            errors.append(EntityError("boundary", sentence, g, overlapping[0]))
        else:
            errors.append(EntityError("missed", sentence, g, None))
    errors.extend(EntityError("spurious", sentence, None, p) for p in free)
    return sorted(errors, key=lambda e: min(s.start for s in (e.gold, e.pred) if s is not None))


def entity_errors(
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    label_encoding: Optional[str] = None,
) -> List[EntityError]:
    """`sentence_errors` of every sentence of a corpus, in corpus order."""
    _check_aligned(gold, predicted)
    errors: List[EntityError] = []
    for i, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted)):
        errors.extend(sentence_errors(gold_tags, predicted_tags, i, label_encoding))
    return errors


def _bracketed(tokens: Sequence[str], spans: Sequence[EntitySpan]) -> str:
    """The sentence with each entity written `[tokens]LABEL`."""
    starts = {s.start: s for s in spans}
    out, i = [], 0
    while i < len(tokens):
        span = starts.get(i)
        if span is None:
            out.append(tokens[i])
            i += 1
        else:
            out.append("[" + " ".join(tokens[span.start : span.end]) + "]" + span.label)
            i = span.end
    return " ".join(out)


def _describe(tokens: Sequence[str], span: EntitySpan) -> str:
    text = " ".join(tokens[span.start : span.end])
    return f'"{text}" {span.label} (tokens {span.start}-{span.end})'


def format_errors(
    tokens: Sequence[Sequence[str]],
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    errors: Optional[List[EntityError]] = None,
    label_encoding: Optional[str] = None,
) -> str:
    """
    The text of `errors.txt`: a count per error kind, then for each sentence with an error its
    number (1-based, in data order), its tokens, the gold and predicted entities in brackets, and
    one line per error. Token ranges are 0-based, end exclusive.
    """
    if errors is None:
        errors = entity_errors(gold, predicted, label_encoding)
    kinds = Counter(e.kind for e in errors)
    lines = [
        f"{len(errors)} entity errors in {len({e.sentence for e in errors})} of "
        f"{len(gold)} sentences: "
        + ", ".join(f"{kinds.get(kind, 0)} {kind}" for kind in ERROR_KINDS),
        "",
    ]
    by_sentence: Dict[int, List[EntityError]] = {}
    for error in errors:
        by_sentence.setdefault(error.sentence, []).append(error)
    for i, sentence_errors_ in by_sentence.items():
        words = tokens[i]
        lines.append(f"## sentence {i + 1}")
        lines.append("text: " + " ".join(words))
        lines.append("gold: " + _bracketed(words, entity_spans(gold[i], label_encoding)))
        lines.append("pred: " + _bracketed(words, entity_spans(predicted[i], label_encoding)))
        for error in sentence_errors_:
            gold_part = _describe(words, error.gold) if error.gold else "-"
            pred_part = _describe(words, error.pred) if error.pred else "-"
            lines.append(f"  {error.kind:<9} gold {gold_part}  |  pred {pred_part}")
        lines.append("")
    return "\n".join(lines)


def plot_confusion(confusion: EntityConfusion, output_path: Union[str, Path]) -> Path:
    """
    A PNG heatmap of `confusion`: cells are coloured by their share of the row (so a pale
    diagonal shows a type that is often missed or confused) and labelled with their counts.
    """
    import numpy as np

    values = np.array(confusion.matrix(), dtype=float).reshape(
        len(confusion.rows), len(confusion.columns)
    )
    row_totals = values.sum(axis=1, keepdims=True)
    shares = np.divide(values, row_totals, out=np.zeros_like(values), where=row_totals > 0)
    size = 1.0 + 0.7 * len(confusion.columns)
    figure, axes = pyplot().subplots(figsize=(size + 1.5, size))
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(confusion.columns)), confusion.columns, rotation=45, ha="right")
    axes.set_yticks(range(len(confusion.rows)), confusion.rows)
    axes.set_xlabel("predicted type")
    axes.set_ylabel("gold type")
    axes.set_title("Entity confusion (exact-boundary matches)")
    for r in range(len(confusion.rows)):
        for c in range(len(confusion.columns)):
            colour = "white" if shares[r, c] > 0.6 else "black"
            axes.text(c, r, str(int(values[r, c])), ha="center", va="center", color=colour)
    figure.colorbar(image, ax=axes, label="share of row")
    return save_png(figure, output_path)


def _check_aligned(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> None:
    for _ in aligned_sentences(gold, predicted, first=1):  # raises at the first mismatch
        pass
