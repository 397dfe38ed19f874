from typing import Any, Dict, List, Optional

import torch
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models import Model
from allennlp.modules import Seq2SeqEncoder, TextFieldEmbedder
from allennlp.modules.conditional_random_field import ConditionalRandomField
from allennlp_models.tagging.models.crf_tagger import CrfTagger

from ner_elmo.models.conlleval_tagger_metrics import ConllevalMetricsMixin
from ner_elmo.models.label_encoding import check_label_encoding
from ner_elmo.modules.conditional_random_field.batched_viterbi_crf import (
    BatchedViterbiConditionalRandomField,
)


@Model.register("ner_crf_tagger")
class NerCrfTagger(ConllevalMetricsMixin, CrfTagger):
    """
    allennlp-models' `crf_tagger`, unchanged in what it learns, with three additions for NER:
    the whole batch is Viterbi-decoded at once (`viterbi: "batched"`, identical tags to the stock
    decoder), conlleval-exact metrics are reported next to allennlp's span F1, and the archive's
    default predictor is this package's offline `"ner"` predictor (entities with character offsets)
    instead of `sentence_tagger`, which needs a spaCy model download.

    Registered as a `Model` with name "ner_crf_tagger".

    # Parameters

    vocab, text_field_embedder, encoder, and every other `crf_tagger` key :
        As for allennlp-models' `CrfTagger` (`label_encoding` defaults to `"BIOUL"` here, and
        constrained decoding and span F1 follow from it).  A `label_encoding` the vocabulary's
        tags cannot be in raises `ConfigurationError` (`label_encoding.check_label_encoding`).
    viterbi : `str`, optional (default = `"batched"`)
        `"batched"` decodes the batch in one vectorised pass; `"stock"` keeps allennlp's
        per-sentence decoder.
    conlleval : `bool`, optional (default = `True`)
        Also report `conlleval-*` metrics (overall and per entity type).
    """

    default_predictor = "ner"

    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        encoder: Seq2SeqEncoder,
        label_encoding: Optional[str] = "BIOUL",
        viterbi: str = "batched",
        conlleval: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(vocab, text_field_embedder, encoder, label_encoding=label_encoding, **kwargs)
        check_label_encoding(vocab, self.label_namespace, label_encoding)
        if viterbi not in ("batched", "stock"):
            raise ValueError(f'viterbi must be "batched" or "stock", got {viterbi!r}')
        self.viterbi = viterbi
        if viterbi == "batched":
            if type(self.crf) is not ConditionalRandomField:
                raise ValueError(
                    'viterbi="batched" supports the plain CRF only; label_weights use '
                    'allennlp\'s weighted CRFs: set viterbi="stock" with them'
                )
            batched = BatchedViterbiConditionalRandomField(
                self.num_tags, include_start_end_transitions=self.include_start_end_transitions
            )
            batched.load_state_dict(self.crf.state_dict())
            self.crf = batched
        self._init_conlleval(vocab, label_encoding, conlleval)

    def forward(
        self,
        tokens: TextFieldTensors,
        tags: torch.LongTensor = None,
        metadata: List[Dict[str, Any]] = None,
        ignore_loss_on_o_tags: Optional[bool] = None,
        **kwargs,
    ) -> Dict[str, torch.Tensor]:
        output = super().forward(tokens, tags, metadata, ignore_loss_on_o_tags, **kwargs)
        if tags is not None and self._conlleval is not None:
            predicted = torch.zeros_like(tags)
            for i, path in enumerate(output["tags"]):
                predicted[i, : len(path)] = torch.tensor(path, dtype=tags.dtype)
            self._conlleval(predicted, tags, output["mask"])
        return output
