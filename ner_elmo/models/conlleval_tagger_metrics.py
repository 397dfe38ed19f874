"""
What `ner_crf_tagger` and `ner_simple_tagger` share: conlleval metrics next to the tagger's own.
"""
from typing import Dict, Optional

from allennlp.data import Vocabulary

from ner_elmo.training.metrics.conlleval_metric import ConllevalMetric


class ConllevalMetricsMixin:
    """
    Adds `conlleval-*` metrics (overall and per entity type) to a tagger's `get_metrics`. The
    tagger lists this class before allennlp's tagger among its bases, calls `_init_conlleval`
    in its constructor and, in `forward`, feeds `self._conlleval` when it is not `None`.
    """

    def _init_conlleval(self, vocab: Vocabulary, label_encoding: Optional[str], enabled: bool) -> None:
        self._conlleval = (
            ConllevalMetric(vocab, tag_namespace=self.label_namespace, label_encoding=label_encoding)
            if enabled and label_encoding
            else None
        )

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        metrics = super().get_metrics(reset)  # type: ignore[misc]
        if self._conlleval is not None:
            metrics.update(self._conlleval.get_metric(reset))
        return metrics
