"""
How well entity scores are calibrated: of the entities a model gives a score near p, is a
fraction p correct? An entity is correct when the gold data has the same type and the same
tokens (conlleval's exact match).

* `expected_calibration_error`: the entities sorted into equal-width score bins; the mean, over
  entities, of |accuracy - mean score| of their bin.
* `precision_recall_at`: precision and recall of the entities scoring at least each threshold.
* `fit_temperature`: the single temperature T (scores recomputed with every score of the model
  divided by T; the decoded tags do not change) that minimises the entities' negative
  log-likelihood of being correct, by golden-section search on log T.

Pure Python and numpy.
"""
import math
from typing import Callable, Dict, List, Sequence, Tuple

import numpy


def expected_calibration_error(scores: Sequence[float], correct: Sequence[bool], bins: int = 10) -> Tuple[float, List[dict]]:
    """ECE over entities, and each non-empty bin's `{low, high, count, mean_score, accuracy}`."""
    scores = numpy.asarray(scores, dtype=float)
    correct = numpy.asarray(correct, dtype=float)
    if len(scores) == 0:
        return 0.0, []
    which = numpy.minimum((scores * bins).astype(int), bins - 1)
    table, error = [], 0.0
    for index in range(bins):
        chosen = which == index
        count = int(chosen.sum())
        if not count:
            continue
        mean_score, accuracy = float(scores[chosen].mean()), float(correct[chosen].mean())
        error += count / len(scores) * abs(accuracy - mean_score)
        table.append({"low": index / bins, "high": (index + 1) / bins, "count": count, "mean_score": mean_score, "accuracy": accuracy})
    return error, table


def precision_recall_at(
    scores: Sequence[float], correct: Sequence[bool], gold_count: int, thresholds: Sequence[float]
) -> List[dict]:
    """For each threshold: the entities kept (score >= it), their precision and the recall."""
    scores = numpy.asarray(scores, dtype=float)
    correct = numpy.asarray(correct, dtype=bool)
    rows = []
    for threshold in thresholds:
        kept = scores >= threshold
        found, right = int(kept.sum()), int((kept & correct).sum())
        rows.append(
            {
                "threshold": threshold,
                "kept": found,
                "precision": 100.0 * right / found if found else 0.0,
                "recall": 100.0 * right / gold_count if gold_count else 0.0,
            }
        )
    return rows


def negative_log_likelihood(scores: Sequence[float], correct: Sequence[bool]) -> float:
    """Mean binary cross-entropy of the entities' correctness under their scores."""
    scores = numpy.clip(numpy.asarray(scores, dtype=float), 1e-7, 1 - 1e-7)
    correct = numpy.asarray(correct, dtype=bool)
    return float(-numpy.mean(numpy.where(correct, numpy.log(scores), numpy.log1p(-scores))))


def fit_temperature(
    outcomes_at: Callable[[float], Tuple[Sequence[float], Sequence[bool]]],
    low: float = 0.25,
    high: float = 4.0,
    steps: int = 25,
) -> float:
    """The temperature in `[low, high]` minimising `negative_log_likelihood(*outcomes_at(T))`."""
    cache: Dict[float, float] = {}

    def loss(log_t: float) -> float:
        if log_t not in cache:
            cache[log_t] = negative_log_likelihood(*outcomes_at(math.exp(log_t)))
        return cache[log_t]

    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(steps):
        if loss(c) <= loss(d):
            b, d = d, c
            c = b - ratio * (b - a)
        else:
            a, c = c, d
            d = a + ratio * (b - a)
    return math.exp((a + b) / 2)


def reliability_diagram(series: List[Tuple[str, List[dict]]], title: str, output_path) -> None:
    """A PNG: each bin's fraction correct against its mean score, one line per `(name, bins)`
    of `series` (e.g. before and after a temperature), the diagonal, and the first's counts."""
    from ner_elmo.reporting.figures import pyplot, save_png

    plt = pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for name, table in series:
        # Marker area follows the bin's entity count: a bin of one entity is a dot, not a claim.
        x, y = [row["mean_score"] for row in table], [row["accuracy"] for row in table]
        line, = top.plot(x, y, "-", linewidth=1, alpha=0.5)
        top.scatter(x, y, s=[8 + 4 * math.sqrt(row["count"]) for row in table], color=line.get_color(), label=name, zorder=3)
    top.set_ylabel("fraction of entities correct")
    top.set_title(title)
    top.legend(loc="lower right", fontsize="small")
    table = series[0][1]
    width = table[0]["high"] - table[0]["low"] if table else 0.1
    bottom.bar([row["low"] for row in table], [row["count"] for row in table], width=width, align="edge", edgecolor="black")
    bottom.set_yscale("log")
    bottom.set_xlabel("entity score (bins of the first line)")
    bottom.set_ylabel("entities")
    bottom.set_xlim(0, 1)
    save_png(figure, output_path)
