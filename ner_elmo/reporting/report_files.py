"""
The files of `allennlp ner-report`, written from tokens, gold tags and predicted tags.

| file | content |
|---|---|
| `conlleval.txt` | conlleval's report, exactly as conlleval.pl prints it |
| `predictions.conll` | `token gold predicted` per line, sentences separated by blank lines, tags as conlleval reads them (BIOUL and BIOES mapped to BIO): `conlleval.pl < predictions.conll` prints `conlleval.txt` |
| `seqeval_report.txt` | seqeval's classification report, default (lenient) and strict modes |
| `token_report.txt` | per-tag precision/recall/F1 over tokens, in the model's tag encoding |
| `per_type.csv` | type, precision, recall, f1 (fractions), support (gold), found, correct |
| `confusion.csv`, `confusion.png` | the `EntityConfusion` (see `error_analysis`) |
| `errors.txt` | every wrong, missed or spurious entity with its sentence (`format_errors`) |
| `metrics.json` | all the numbers above, the model's own metrics, and where they came from |

Entities are conlleval's chunks after mapping the tags of `label_encoding` to BIO (BIOUL's
`U-`/`L-` become `B-`/`I-`), so BIOUL, BIOES, BIO and IOB1 tags of the same entities score alike.
"""
import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from ner_elmo.data.tag_schemes import TagSchemeError, detect_scheme, distinctive_prefixes
from ner_elmo.reporting.error_analysis import (
    ERROR_KINDS,
    MISSED,
    SPURIOUS,
    EntityConfusion,
    entity_confusion,
    entity_errors,
    format_errors,
    plot_confusion,
)

PER_TYPE_COLUMNS = ["type", "precision", "recall", "f1", "support", "found", "correct"]


def infer_label_encoding(tag_sequences: Sequence[Sequence[str]]) -> Optional[str]:
    """
    The scheme `ner_elmo.data.tag_schemes.detect_scheme` finds when it is one conlleval must
    be told (`"BIOUL"`, `"BIOES"`); `None` for BIO and IOB1 tags, which conlleval reads as they
    are, and for tags that are not the entity tags of one scheme (POS tags, say).
    """
    try:
        scheme = detect_scheme(tag_sequences)
    except TagSchemeError:
        return None
    return scheme if distinctive_prefixes(scheme) else None


def per_type_scores(confusion: EntityConfusion) -> Dict[str, Dict[str, float]]:
    """
    `{type: {precision, recall, f1, support, found, correct}}` and an `"overall"` row, from
    the confusion counts: support = row sum, found = column sum, correct = diagonal.
    Precision, recall and F1 are fractions, 0 when undefined (as conlleval reports them).
    """
    rows = {}
    totals = Counter()
    for label in confusion.labels:
        counts = {
            "support": sum(confusion.count(label, c) for c in confusion.columns),
            "found": sum(confusion.count(r, label) for r in confusion.rows),
            "correct": confusion.count(label, label),
        }
        totals.update(counts)
        rows[label] = {**_prf(**counts), **counts}
    # No entities at all (part-of-speech tags, say): an overall row of zeros, not a crash.
    overall = {k: totals[k] for k in ("support", "found", "correct")}
    rows["overall"] = {**_prf(**overall), **overall}
    return rows


def _prf(support: int, found: int, correct: int) -> Dict[str, float]:
    precision = correct / found if found else 0.0
    recall = correct / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def write_ner_report(
    output_dir: Union[str, Path],
    tokens: Sequence[Sequence[str]],
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    model_metrics: Optional[Mapping[str, float]] = None,
    info: Optional[Mapping[str, Any]] = None,
    label_encoding: Optional[str] = "auto",
) -> Dict[str, Any]:
    """
    Writes every report file into `output_dir` (created if needed) and returns what
    `metrics.json` holds: `info` (with the `label_encoding` used), `counts`, `conlleval`
    (percentages, as conlleval prints them), `seqeval` (per mode), `token_report`,
    `per_type`, `confusion`, `errors` (count per kind) and `model_metrics`. `tokens[i]`,
    `gold[i]` and `predicted[i]` describe sentence i and must have equal lengths.
    `label_encoding` is the tags' scheme (`"BIOUL"`, `"BIOES"`, `"BIO"`, `"IOB1"` or `None`
    for BIO/IOB1); `"auto"` infers it with `infer_label_encoding`.
    """
    from ner_elmo.scoring.conlleval import evaluate
    from ner_elmo.scoring.reports import seqeval_report, token_report

    if len(tokens) != len(gold):
        raise ValueError(f"{len(tokens)} token sentences but {len(gold)} gold tag sentences")
    for i, (words, tags) in enumerate(zip(tokens, gold)):
        if len(words) != len(tags):
            raise ValueError(f"sentence {i + 1}: {len(words)} tokens but {len(tags)} gold tags")
    if label_encoding == "auto":
        label_encoding = infer_label_encoding(list(gold) + list(predicted))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    confusion = entity_confusion(gold, predicted, label_encoding)
    errors = entity_errors(gold, predicted, label_encoding)
    conlleval = evaluate(gold, predicted, label_encoding=label_encoding)
    _write(output_dir / "conlleval.txt", conlleval.to_text())
    _write(output_dir / "predictions.conll", format_predictions(tokens, gold, predicted, label_encoding))
    seqeval_scores = {}
    seqeval_parts = []
    scheme_name = label_encoding or "the scheme seqeval detects"
    for mode, heading in (
        ("default", "seqeval, default mode (lenient, conlleval-compatible entities)"),
        ("strict", f"seqeval, strict mode (only entities well formed in {scheme_name})"),
    ):
        try:
            report = seqeval_report(gold, predicted, mode=mode, scheme=label_encoding)
        except ValueError as error:  # nothing to score, or a scheme seqeval cannot check
            seqeval_parts.append(f"{heading}\n\nnot available: {error}\n")
            continue
        seqeval_scores[mode] = report.scores
        seqeval_parts.append(f"{heading}\n\n{report.text}")
    _write(output_dir / "seqeval_report.txt", "\n".join(seqeval_parts))
    try:
        tokens_report = token_report(gold, predicted)
        token_scores = tokens_report.scores
        _write(output_dir / "token_report.txt", tokens_report.text)
    except ValueError as error:
        token_scores = {}
        _write(output_dir / "token_report.txt", f"not available: {error}")

    per_type = per_type_scores(confusion)
    with (output_dir / "per_type.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=PER_TYPE_COLUMNS)
        writer.writeheader()
        writer.writerows({"type": t, **row} for t, row in per_type.items())
    with (output_dir / "confusion.csv").open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(confusion.csv_rows())
    plot_confusion(confusion, output_dir / "confusion.png")
    _write(
        output_dir / "errors.txt",
        format_errors(tokens, gold, predicted, errors, label_encoding=label_encoding),
    )

    kinds = Counter(error.kind for error in errors)
    metrics = {
        "info": {**dict(info or {}), "label_encoding": label_encoding},
        "counts": {
            "sentences": len(gold),
            "tokens": sum(len(tags) for tags in gold),
            "gold_entities": per_type["overall"]["support"],
            "predicted_entities": per_type["overall"]["found"],
            "correct_entities": per_type["overall"]["correct"],
        },
        "conlleval": conlleval.to_dict(),
        "seqeval": seqeval_scores,
        "token_report": token_scores,
        "per_type": per_type,
        "confusion": {"rows": confusion.rows, "columns": confusion.columns,
                      "matrix": confusion.matrix(), "missed": MISSED, "spurious": SPURIOUS},
        "errors": {kind: kinds.get(kind, 0) for kind in ERROR_KINDS},
        "model_metrics": dict(model_metrics or {}),
    }
    _write(output_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def format_summary(metrics: Mapping[str, Any], output_dir: Union[str, Path]) -> str:
    """A few lines for the terminal: overall and per-type F1, error counts, where files went."""
    counts = metrics["counts"]
    lines = [
        f"{counts['sentences']} sentences, {counts['tokens']} tokens, "
        f"{counts['gold_entities']} gold / {counts['predicted_entities']} predicted / "
        f"{counts['correct_entities']} correct entities",
    ]
    for entity_type, row in metrics["per_type"].items():
        lines.append(
            f"  {entity_type:<10} precision {100 * row['precision']:6.2f}  "
            f"recall {100 * row['recall']:6.2f}  F1 {100 * row['f1']:6.2f}  "
            f"(support {row['support']})"
        )
    lines.append(f"token accuracy {metrics['conlleval']['overall']['token_accuracy']:.2f}")
    lines.append("errors: " + ", ".join(f"{n} {kind}" for kind, n in metrics["errors"].items()))
    lines.append(f"report written to {output_dir}")
    return "\n".join(lines)


def format_predictions(
    tokens: Sequence[Sequence[str]],
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    label_encoding: Optional[str],
) -> str:
    """The `token gold predicted` lines conlleval.pl reads, a blank line after each sentence."""
    from ner_elmo.scoring.conlleval import to_conlleval_tags

    lines = []
    for words, gold_tags, predicted_tags in zip(tokens, gold, predicted):
        for word, gold_tag, predicted_tag in zip(
            words, to_conlleval_tags(gold_tags, label_encoding), to_conlleval_tags(predicted_tags, label_encoding)
        ):
            lines.append(f"{word} {gold_tag} {predicted_tag}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
