"""
What `ner_crf_tagger` and `ner_simple_tagger` share: conlleval metrics next to the tagger's own.
"""
from typing import Dict, Optional

from allennlp.data import Vocabulary
from allennlp.training.metrics import SpanBasedF1Measure

from ner_elmo.training.metrics.conlleval import ConllevalMetric
from ner_elmo.training.metrics.ner_span_f1 import NerSpanF1Measure


#: The conlleval figure shown in allennlp's progress bar next to the loss and span F1. The others
#: (precision, recall, token accuracy, every entity type) get a leading underscore, which keeps
#: them out of the bar but in the logs, `metrics.json`, `metrics_epoch_*.json` and the
#: `ner_epoch_report` files (`_conlleval-f1-PER`; `validation__conlleval-f1-PER` there).
PROGRESS_BAR_METRICS = ("conlleval-f1-overall",)
HIDDEN_PREFIX = "_"


class ConllevalMetricsMixin:
    """
    Adds `conlleval-*` metrics (overall and per entity type) to a tagger's `get_metrics`. The
    tagger lists this class before allennlp's tagger among its bases, calls `_init_conlleval`
    in its constructor and, in `forward`, feeds `self._conlleval` when it is not `None`.
    It also swaps the tagger's span F1 for `ner_span_f1`, which works in distributed training.
    """

    def _init_conlleval(self, vocab: Vocabulary, label_encoding: Optional[str], enabled: bool) -> None:
        span_f1 = getattr(self, "_f1_metric", None)
        if type(span_f1) is SpanBasedF1Measure:
            self._f1_metric = NerSpanF1Measure(
                vocab,
                tag_namespace=self.label_namespace,
                ignore_classes=span_f1._ignore_classes,
                label_encoding=span_f1._label_encoding,
            )
        self._conlleval = (
            ConllevalMetric(vocab, tag_namespace=self.label_namespace, label_encoding=label_encoding)
            if enabled and label_encoding
            else None
        )

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        metrics = super().get_metrics(reset)  # type: ignore[misc]
        if self._conlleval is not None:
            for name, value in self._conlleval.get_metric(reset).items():
                metrics[name if name in PROGRESS_BAR_METRICS else HIDDEN_PREFIX + name] = value
        return metrics
