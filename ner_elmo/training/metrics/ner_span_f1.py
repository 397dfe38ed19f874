from typing import Dict, List, Tuple

import torch
from allennlp.common.util import is_distributed
from allennlp.nn.util import dist_reduce_sum
from allennlp.training.metrics.metric import Metric
from allennlp.training.metrics.span_based_f1_measure import SpanBasedF1Measure


@Metric.register("ner_span_f1")
class NerSpanF1Measure(SpanBasedF1Measure):
    """
    allennlp's `span_f1` (same parameters, same metric names and values) that also works in
    distributed training: the span counts are summed over the workers, so every worker reports
    the numbers of the whole data. allennlp's own raises "Distributed aggregation for
    SpanBasedF1Measure is currently not supported" at the first batch, which stops every
    distributed run of a tagger with span F1 (the configs' validation metric is its
    `f1-measure-overall`); `ner_crf_tagger` and `ner_simple_tagger` use this one instead.

    Registered as a `Metric` with name "ner_span_f1".

    # Parameters

    As allennlp's `span_f1`: `vocabulary`, `tag_namespace`, `ignore_classes`,
    `label_encoding`, `tags_to_spans_function`.
    """

    supports_distributed = True

    def get_metric(self, reset: bool = False) -> Dict[str, float]:
        if not is_distributed():
            return super().get_metric(reset)
        true_positives, false_positives, false_negatives = self._sum_over_workers()
        metrics: Dict[str, float] = {}
        for span_type in sorted(true_positives):
            if true_positives[span_type] or false_positives[span_type] or false_negatives[span_type]:
                precision, recall, f1 = self._compute_metrics(
                    true_positives[span_type], false_positives[span_type], false_negatives[span_type]
                )
                metrics[f"precision-{span_type}"] = precision
                metrics[f"recall-{span_type}"] = recall
                metrics[f"f1-measure-{span_type}"] = f1
        precision, recall, f1 = self._compute_metrics(
            sum(true_positives.values()), sum(false_positives.values()), sum(false_negatives.values())
        )
        metrics["precision-overall"] = precision
        metrics["recall-overall"] = recall
        metrics["f1-measure-overall"] = f1
        if reset:
            self.reset()
        return metrics

    def _span_types(self) -> List[str]:
        # Every worker has the same vocabulary, so the counts travel as one fixed-layout tensor.
        return sorted({tag.partition("-")[2] for tag in self._label_vocabulary.values() if "-" in tag})

    def _sum_over_workers(self) -> Tuple[Dict[str, int], Dict[str, int], Dict[str, int]]:
        types = self._span_types()
        tables = (self._true_positives, self._false_positives, self._false_negatives)
        unknown = {key for table in tables for key, count in table.items() if count} - set(types)
        if unknown:
            raise RuntimeError(f"span types {sorted(unknown)} are not types of the tag vocabulary")
        flat = [table.get(span_type, 0) for table in tables for span_type in types]
        summed = dist_reduce_sum(torch.tensor(flat, dtype=torch.long)).tolist()
        n = len(types)
        return tuple(  # type: ignore[return-value]
            dict(zip(types, summed[offset : offset + n])) for offset in (0, n, 2 * n)
        )
