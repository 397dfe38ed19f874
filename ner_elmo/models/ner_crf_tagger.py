from typing import Any, Dict, List, Optional

import torch
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models import Model
from allennlp.nn import util
from allennlp.modules import Seq2SeqEncoder, TextFieldEmbedder
from allennlp.modules.conditional_random_field import ConditionalRandomField
from allennlp_models.tagging.models.crf_tagger import CrfTagger

from ner_elmo.models.conlleval_tagger_metrics import ConllevalMetricsMixin
from ner_elmo.models.label_encoding import check_label_encoding
from ner_elmo.modules.conditional_random_field.batched_viterbi_crf import (
    BatchedViterbiConditionalRandomField,
)
from ner_elmo.modules.word_dropout import WordDropout, sequence_dropout
from ner_elmo.modules.viterbi import paths_to_lists


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
        `"batched"` decodes the batch in one vectorised pass and hands the paths to the metrics as
        one tensor; `"stock"` keeps allennlp's per-sentence decoder and crf_tagger's forward.
    conlleval : `bool`, optional (default = `True`)
        Also report `conlleval-*` metrics (overall and per entity type).
    dropout : `float`, optional (default = `None`)
        As for `crf_tagger`: dropout of the embedded tokens and of the encoder's output.
    dropout_kind : `str`, optional (default = `"standard"`)
        `"standard"`: a mask per element, as `crf_tagger`; `"locked"`: one mask per sentence and
        feature, the same at every token (allennlp's `InputVariationalDropout`).
    word_dropout : `float`, optional (default = `0.0`)
        The probability of zeroing a token's whole embedding in training (flair's word dropout).
        Needs `viterbi: "batched"` (crf_tagger's own forward has no place for it).
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
        dropout: Optional[float] = None,
        dropout_kind: str = "standard",
        word_dropout: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(
            vocab, text_field_embedder, encoder, label_encoding=label_encoding, dropout=dropout, **kwargs
        )
        check_label_encoding(vocab, self.label_namespace, label_encoding)
        if viterbi not in ("batched", "stock"):
            raise ValueError(f'viterbi must be "batched" or "stock", got {viterbi!r}')
        if word_dropout and viterbi == "stock":
            raise ValueError('word_dropout needs viterbi="batched": crf_tagger\'s forward has no word dropout')
        self.viterbi = viterbi
        dropout_module = sequence_dropout(dropout or 0.0, dropout_kind)  # checks the keys
        # The "standard" kind is crf_tagger's own torch.nn.Dropout (the same draws).
        self.dropout = dropout_module if dropout else None
        self._word_dropout = WordDropout(word_dropout) if word_dropout else None
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
        if self.viterbi == "batched" and self.top_k == 1:
            return self._forward_batched(tokens, tags, metadata, ignore_loss_on_o_tags)
        if any(len(lengths) > 1 for lengths in _sentence_lengths(metadata)):
            raise ValueError(
                'instances that join sentences (the reader\'s document_context_tokens) need viterbi="batched" '
                "and top_k 1: only that decoder keeps entities within their sentences"
            )
        output = super().forward(tokens, tags, metadata, ignore_loss_on_o_tags, **kwargs)
        if tags is not None and self._conlleval is not None:
            predicted = torch.zeros_like(tags)
            for i, path in enumerate(output["tags"]):
                predicted[i, : len(path)] = torch.tensor(path, dtype=tags.dtype)
            self._conlleval(predicted, tags, output["mask"])
        return output

    def _forward_batched(
        self,
        tokens: TextFieldTensors,
        tags: Optional[torch.LongTensor],
        metadata: Optional[List[Dict[str, Any]]],
        ignore_loss_on_o_tags: Optional[bool],
    ) -> Dict[str, Any]:
        # crf_tagger's forward, step for step (the same outputs, loss and metric updates), except
        # that the decoded paths stay one tensor: the metrics get them without stock's Python loop
        # over every token of the batch.
        if ignore_loss_on_o_tags is None:
            ignore_loss_on_o_tags = self.ignore_loss_on_o_tags
        embedded = self.text_field_embedder(tokens)
        mask = util.get_text_field_mask(tokens)
        if self.dropout:
            embedded = self.dropout(embedded)
        if self._word_dropout is not None:
            embedded = self._word_dropout(embedded)
        encoded = self.encoder(embedded, mask)
        if self.dropout:
            encoded = self.dropout(encoded)
        if self._feedforward is not None:
            encoded = self._feedforward(encoded)
        logits = self.tag_projection_layer(encoded)
        # Joined sentences (document context) are decoded and trained as separate sentences.
        boundaries = self.crf.sentence_boundary_scores(logits, _sentence_lengths(metadata))
        scored = logits if boundaries is None else logits + boundaries
        paths, scores = self.crf.viterbi_paths(scored, mask)
        output: Dict[str, Any] = {
            "logits": logits,
            "mask": mask,
            "tags": [path for path, _ in paths_to_lists(paths, mask, scores)],
        }
        if tags is not None:
            crf_mask = mask
            if ignore_loss_on_o_tags:
                crf_mask = mask & (tags != self.vocab.get_token_index("O", namespace=self.label_namespace))
            output["loss"] = -self.crf(scored, tags, crf_mask)
            # The decoded tags as one-hot "class probabilities", zero at padding, as stock feeds them.
            one_hot = torch.zeros_like(logits).scatter_(2, paths.unsqueeze(2), 1.0) * mask.unsqueeze(2)
            for metric in self.metrics.values():
                metric(one_hot, tags, mask)
            if self.calculate_span_f1:
                self._f1_metric(one_hot, tags, mask)
            elif self._verbose_metrics:
                self._f_beta_measure(one_hot, tags, mask)
            if self._conlleval is not None:
                self._conlleval(paths, tags, mask)
        if metadata is not None:
            output["words"] = [x["words"] for x in metadata]
        return output


def _sentence_lengths(metadata: Optional[List[Dict[str, Any]]]) -> List[List[int]]:
    """Each instance's sentence lengths when its reader joined sentences (else an empty list)."""
    return [list(item.get("sentence_lengths") or []) for item in metadata or []]
