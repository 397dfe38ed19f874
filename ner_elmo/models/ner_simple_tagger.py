from typing import Any, Dict, List, Optional

import torch
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models import Model
from allennlp.models.simple_tagger import SimpleTagger
from allennlp.modules import Seq2SeqEncoder, TextFieldEmbedder
from allennlp.nn.util import get_text_field_mask

from ner_elmo.models.conlleval_tagger_metrics import ConllevalMetricsMixin
from ner_elmo.models.label_encoding import check_label_encoding


@Model.register("ner_simple_tagger")
class NerSimpleTagger(ConllevalMetricsMixin, SimpleTagger):
    """
    allennlp's `simple_tagger` (a per-token softmax, no CRF): the baseline the Keras tutorials
    train. Adds conlleval-exact metrics, accepts the readers' optional feature fields, and uses
    the offline `"ner"` predictor by default.

    Registered as a `Model` with name "ner_simple_tagger".

    # Parameters

    vocab, text_field_embedder, encoder, and every other `simple_tagger` key :
        As for allennlp's `SimpleTagger`; `label_encoding` defaults to `"BIOUL"` here, and one
        the vocabulary's tags cannot be in raises `ConfigurationError`
        (`label_encoding.check_label_encoding`).
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
        conlleval: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(vocab, text_field_embedder, encoder, label_encoding=label_encoding, **kwargs)
        check_label_encoding(vocab, self.label_namespace, label_encoding)
        self.label_encoding = label_encoding
        self._init_conlleval(vocab, label_encoding, conlleval)

    def forward(  # type: ignore
        self,
        tokens: TextFieldTensors,
        tags: torch.LongTensor = None,
        metadata: List[Dict[str, Any]] = None,
        ignore_loss_on_o_tags: bool = False,
        **kwargs,
    ) -> Dict[str, torch.Tensor]:
        # Extra fields (pos_tags, chunk_tags) are features for other models: ignored here.
        output = super().forward(tokens, tags, metadata, ignore_loss_on_o_tags)
        mask = get_text_field_mask(tokens)
        if tags is not None and self._conlleval is not None:
            self._conlleval(output["class_probabilities"], tags, mask)
        output["mask"] = mask
        return output

    def make_output_human_readable(self, output_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        # allennlp's simple_tagger tags every position of the padded batch: keep each sentence's own.
        output_dict = super().make_output_human_readable(output_dict)
        lengths = output_dict["mask"].sum(-1).reshape(-1).tolist()
        output_dict["tags"] = [tags[:length] for tags, length in zip(output_dict["tags"], lengths)]
        return output_dict
