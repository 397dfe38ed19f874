"""
Per-entity-type precision/recall/F1 picked out of a flat AllenNLP metrics dict.

Two families of names are understood:

- `"span_f1"`: allennlp's `SpanBasedF1Measure`, as `crf_tagger` reports it: `precision-PER`,
  `recall-PER`, `f1-measure-PER` and `...-overall` (per-type keys only with
  `verbose_metrics: true`).
- `"conlleval"`: this package's conlleval metric: `conlleval-precision-PER`,
  `conlleval-recall-PER`, `conlleval-f1-PER` and `...-overall`.

The taggers hide a metric from allennlp's progress bar with a leading underscore
(`_conlleval-f1-PER`): both spellings are read.
"""
from typing import Any, Dict, List, Mapping, Optional, Tuple

OVERALL = "overall"

#: scorer -> (precision prefix, recall prefix, f1 prefix) of its metric names.
METRIC_NAMES: Dict[str, Tuple[str, str, str]] = {
    "conlleval": ("conlleval-precision-", "conlleval-recall-", "conlleval-f1-"),
    "span_f1": ("precision-", "recall-", "f1-measure-"),
}


def detect_scorer(metrics: Mapping[str, Any], prefix: str = "") -> Optional[str]:
    """
    The family present in `metrics` under `prefix` (`"validation_"`, `"training_"` or `""`):
    `"conlleval"` when it has a conlleval F1, else `"span_f1"` when it has a span F1, else `None`.
    """
    for scorer in ("conlleval", "span_f1"):
        f1_prefixes = (prefix + METRIC_NAMES[scorer][2], prefix + "_" + METRIC_NAMES[scorer][2])
        if any(key.startswith(f1_prefixes) for key in metrics):
            return scorer
    return None


def type_metrics(
    metrics: Mapping[str, Any], prefix: str = "", scorer: str = "auto"
) -> Tuple[Optional[str], Dict[str, Dict[str, float]]]:
    """
    `(scorer, {type: {"precision", "recall", "f1"}})` from the metric names of `scorer`
    (`"conlleval"`, `"span_f1"` or `"auto"`, see `detect_scorer`) under `prefix`. Types come
    sorted, with `"overall"` last; a type missing one of the three numbers gets `None` for it.
    `(None, {})` when `scorer="auto"` finds neither family.
    """
    if scorer == "auto":
        detected = detect_scorer(metrics, prefix)
        if detected is None:
            return None, {}
        scorer = detected
    if scorer not in METRIC_NAMES:
        raise ValueError(f'scorer must be "auto", "conlleval" or "span_f1", got {scorer!r}')
    table: Dict[str, Dict[str, Optional[float]]] = {}
    for field, name_prefix in zip(("precision", "recall", "f1"), METRIC_NAMES[scorer]):
        for full_prefix in (prefix + name_prefix, prefix + "_" + name_prefix):
            for key, value in metrics.items():
                if key.startswith(full_prefix) and len(key) > len(full_prefix):
                    entity_type = key[len(full_prefix) :]
                    row = table.setdefault(entity_type, {"precision": None, "recall": None, "f1": None})
                    row[field] = float(value)
    ordered = sorted(t for t in table if t != OVERALL) + ([OVERALL] if OVERALL in table else [])
    return scorer, {t: table[t] for t in ordered}  # type: ignore[misc]


def format_type_table(table: Mapping[str, Mapping[str, Optional[float]]]) -> List[str]:
    """Lines of a fixed-width table: type, precision, recall, F1 (in percent)."""
    width = max([len("type")] + [len(t) for t in table])
    lines = [f"{'type':<{width}}  {'precision':>9}  {'recall':>9}  {'f1':>9}"]
    for entity_type, row in table.items():
        cells = [
            f"{100 * row[k]:9.2f}" if row.get(k) is not None else f"{'-':>9}"
            for k in ("precision", "recall", "f1")
        ]
        lines.append(f"{entity_type:<{width}}  " + "  ".join(cells))
    return lines
