from typing import Dict, List, Optional

import torch
from allennlp.common.util import is_distributed
from allennlp.data import Vocabulary
from allennlp.nn.util import dist_reduce_sum
from allennlp.training.metrics.metric import Metric

from ner_elmo.scoring.conlleval import (
    ConllevalAccumulator,
    ConllevalCounts,
    ConllevalResult,
    split_tag,
    to_conlleval_tags,
)


@Metric.register("conlleval")
class ConllevalMetric(Metric):
    """
    Chunk precision, recall and F1 with exactly the numbers of the CoNLL `conlleval` script,
    accumulated over batches of tag indices. Each sentence is scored as conlleval scores a
    file with a blank line after every sentence; tags in `label_encoding` are first mapped to
    BIO token by token (BIOUL: U→B, L→I), which conlleval reads correctly, so the token
    accuracy also compares the mapped tags (a predicted `B-PER` for a gold `U-PER` is right:
    both are a chunk starting there).

    Unlike allennlp's `span_f1`, it follows conlleval's lenient reading of ill-formed sequences
    (an `I-` without `B-` opens a chunk) and reports token accuracy; and it works in distributed
    training (the counts are summed over workers, so every worker reports the same numbers).

    Registered as a `Metric` with name "conlleval".

    # Parameters

    vocabulary : `Vocabulary`
        Holds the tag namespace.
    tag_namespace : `str`, optional (default = `"labels"`)
        The namespace of the tags.
    label_encoding : `str`, optional (default = `"BIOUL"`)
        The tags' encoding: `"BIOUL"`, `"BIO"`, `"IOB1"`, `"BIOES"`, `"BMES"`, or `None` to
        give the tags to conlleval as they are.
    """

    supports_distributed = True

    def __init__(
        self,
        vocabulary: Vocabulary,
        tag_namespace: str = "labels",
        label_encoding: Optional[str] = "BIOUL",
    ) -> None:
        index_to_tag = vocabulary.get_index_to_token_vocabulary(tag_namespace)
        if not index_to_tag:
            raise ValueError(f"the vocabulary has no tags in namespace {tag_namespace!r}")
        tags = [index_to_tag[index] for index in range(len(index_to_tag))]
        # conlleval's reading of every tag index, computed once
        self._tags: List[str] = to_conlleval_tags(tags, label_encoding)
        self._types: List[str] = sorted({split_tag(tag)[1] for tag in self._tags})
        self.tag_namespace = tag_namespace
        self.label_encoding = label_encoding
        self._accumulator = ConllevalAccumulator()

    def __call__(
        self,
        predictions: torch.Tensor,
        gold_labels: torch.Tensor,
        mask: Optional[torch.BoolTensor] = None,
    ) -> None:
        """
        # Parameters

        predictions : `torch.Tensor`
            Tag indices of shape `(batch_size, sequence_length)` (decoded tags, e.g. Viterbi
            paths padded with any index), or scores of shape
            `(batch_size, sequence_length, num_tags)`, whose argmax is taken.
        gold_labels : `torch.Tensor`
            Gold tag indices of shape `(batch_size, sequence_length)`.
        mask : `torch.BoolTensor`, optional (default = `None`)
            `(batch_size, sequence_length)`: which positions are tokens. `None`: all of them.
        """
        predictions, gold_labels, mask = self.detach_tensors(predictions, gold_labels, mask)
        if predictions.dim() == gold_labels.dim() + 1:
            predictions = predictions.argmax(-1)
        if predictions.shape != gold_labels.shape or gold_labels.dim() != 2:
            raise ValueError(
                "predictions must be (batch_size, sequence_length) indices or "
                "(batch_size, sequence_length, num_tags) scores for gold_labels of shape "
                f"(batch_size, sequence_length); got {tuple(predictions.shape)} and {tuple(gold_labels.shape)}"
            )
        if mask is None:
            mask = torch.ones_like(gold_labels, dtype=torch.bool)
        if mask.shape != gold_labels.shape:
            raise ValueError(f"mask of shape {tuple(mask.shape)} for gold_labels of shape {tuple(gold_labels.shape)}")
        mask = mask.bool().cpu()
        tags = self._tags
        for predicted_row, gold_row, mask_row in zip(predictions.cpu(), gold_labels.cpu(), mask):
            predicted_indices = predicted_row[mask_row].tolist()
            gold_indices = gold_row[mask_row].tolist()
            self._accumulator.add_sentence(
                [tags[index] for index in gold_indices], [tags[index] for index in predicted_indices]
            )

    def get_result(self, reset: bool = False) -> ConllevalResult:
        """
        The full `ConllevalResult` (summed over workers in distributed training): its
        `to_text()` is conlleval's report.
        """
        counts = self._accumulator.final_counts()
        if is_distributed():
            counts = self._sum_over_workers(counts)
        if reset:
            self.reset()
        return ConllevalResult.from_counts(counts)

    def get_metric(self, reset: bool = False) -> Dict[str, float]:
        """
        # Returns

        `Dict[str, float]`, values in [0, 1]
            `conlleval-precision-overall`, `conlleval-recall-overall`, `conlleval-f1-overall`,
            `conlleval-accuracy` (token accuracy), and `conlleval-precision-TYPE`,
            `conlleval-recall-TYPE`, `conlleval-f1-TYPE` for each chunk type seen.
        """
        result = self.get_result(reset)
        overall = result.overall
        metrics = {
            "conlleval-precision-overall": overall.precision / 100,
            "conlleval-recall-overall": overall.recall / 100,
            "conlleval-f1-overall": overall.f1 / 100,
            "conlleval-accuracy": overall.token_accuracy / 100,
        }
        for chunk_type, scores in result.by_type.items():
            metrics[f"conlleval-precision-{chunk_type}"] = scores.precision / 100
            metrics[f"conlleval-recall-{chunk_type}"] = scores.recall / 100
            metrics[f"conlleval-f1-{chunk_type}"] = scores.f1 / 100
        return metrics

    def reset(self) -> None:
        self._accumulator = ConllevalAccumulator()

    def _sum_over_workers(self, counts: ConllevalCounts) -> ConllevalCounts:
        # Every worker knows the same types (from the vocabulary), so the counts travel as one
        # fixed-layout tensor.
        types = self._types
        tables = (counts.found_correct, counts.found_guessed, counts.correct_chunks)
        unknown = {key for table in tables for key in table} - set(types)
        if unknown:
            raise RuntimeError(f"chunk types {sorted(unknown)} are not in namespace {self.tag_namespace!r}")
        flat = [counts.tokens, counts.correct_tags, counts.non_o_tokens, counts.non_o_correct_tags]
        for table in tables:
            flat.extend(table.get(chunk_type, 0) for chunk_type in types)
        summed = dist_reduce_sum(torch.tensor(flat, dtype=torch.long)).tolist()
        n = len(types)

        def table_at(offset: int) -> Dict[str, int]:
            values = summed[offset : offset + n]
            return {chunk_type: value for chunk_type, value in zip(types, values) if value}

        return ConllevalCounts(
            *summed[:4], found_correct=table_at(4), found_guessed=table_at(4 + n), correct_chunks=table_at(4 + 2 * n)
        )
