import itertools
from typing import List, Optional, Sequence, Tuple

import torch
from allennlp.modules.conditional_random_field import ConditionalRandomField

from ner_elmo.modules.viterbi import FORBIDDEN as _FORBIDDEN
from ner_elmo.modules.viterbi import constrained_transitions, paths_to_lists, viterbi_decode_batch


def crf_scores(crf: ConditionalRandomField) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An allennlp CRF's transition, start and end scores as its decoder sees them
    (`ner_elmo.modules.viterbi.constrained_transitions`)."""
    with_ends = crf.include_start_end_transitions
    return constrained_transitions(
        crf.transitions,
        crf._constraint_mask,
        crf.start_transitions if with_ends else None,
        crf.end_transitions if with_ends else None,
    )


class BatchedViterbiConditionalRandomField(ConditionalRandomField):
    """
    allennlp's `ConditionalRandomField` whose best-path decoding runs on the whole batch at once
    (see `ner_elmo.modules.viterbi`). Training (the log-likelihood) is inherited unchanged, and so
    are the parameters: an instance can take a stock CRF's `state_dict`. Top-k decoding (k > 1)
    falls back to the stock per-sentence decoder.
    """

    def effective_transitions(self):
        """Transition, start and end scores with the constraint mask applied, as stock decodes."""
        return crf_scores(self)

    def sentence_boundary_scores(
        self, logits: torch.Tensor, sentence_lengths: Sequence[Optional[Sequence[int]]]
    ) -> Optional[torch.Tensor]:
        """
        Scores to add to `logits` (`(batch, time, tags)`) when a row joins several sentences
        (document context): every sentence must end with a tag the constraints let a sequence
        end with, and start with one they let it start with, as if it stood alone. Without them
        the CRF can tag an entity across a sentence boundary, which the file's sentences cannot
        hold. `sentence_lengths[i]` lists row i's sentence lengths (`None` or one: nothing to add).
        Returns `None` when no row joins sentences.
        """
        rows, ends = [], []
        for row, lengths in enumerate(sentence_lengths):
            for end in itertools.accumulate(list(lengths or [])[:-1]):
                rows.append(row)
                ends.append(end)
        if not rows:
            return None
        num_tags = self.num_tags
        allowed = self._constraint_mask.detach().bool()
        forbidden = torch.tensor(_FORBIDDEN, dtype=logits.dtype, device=logits.device)
        zero = torch.zeros((), dtype=logits.dtype, device=logits.device)
        scores = torch.zeros_like(logits)
        rows_t = torch.tensor(rows, device=logits.device)
        ends_t = torch.tensor(ends, device=logits.device)
        scores[rows_t, ends_t - 1] = torch.where(allowed[:num_tags, num_tags + 1], zero, forbidden)
        scores[rows_t, ends_t] = torch.where(allowed[num_tags, :num_tags], zero, forbidden)
        return scores

    def viterbi_paths(self, logits: torch.Tensor, mask: torch.BoolTensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The best paths as one `(batch, time)` tensor on the logits' device (0 at padding), and
        their scores: what `viterbi_tags` returns as lists."""
        transitions, start, end = self.effective_transitions()
        paths, scores = viterbi_decode_batch(logits.detach(), mask, transitions, start, end)
        return paths.to(logits.device), scores

    def viterbi_tags(
        self, logits: torch.Tensor, mask: Optional[torch.BoolTensor] = None, top_k: Optional[int] = None
    ) -> List:
        if top_k is not None and top_k > 1:
            return super().viterbi_tags(logits, mask, top_k)
        if mask is None:
            mask = torch.ones(*logits.shape[:2], dtype=torch.bool, device=logits.device)
        paths, scores = self.viterbi_paths(logits, mask)
        decoded = paths_to_lists(paths, mask, scores)
        if top_k is None:
            return decoded
        return [[best] for best in decoded]
