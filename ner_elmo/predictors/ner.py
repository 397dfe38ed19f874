"""
The offline NER predictor: raw text in, entities with character offsets and scores out.
"""
from typing import Any, List, Optional, Sequence, Union

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import JsonDict
from allennlp.data import DatasetReader, Instance
from allennlp.data.tokenizers import Token
from allennlp.models import Model
from allennlp.predictors.predictor import Predictor

from ner_elmo.data.tag_schemes import TagSchemeError, normalize_scheme, validate_tags
from ner_elmo.data.text_segmentation import TextToken
from ner_elmo.modules.conditional_random_field.batched_viterbi_crf import crf_scores
from ner_elmo.modules.entity_confidence import EntityScorer, SentenceScores
from ner_elmo.runtime.inputs import (  # noqa: F401  (also this module's names, as before)
    INPUT_KEYS,
    RESERVED_KEYS,
    InputReader,
    ParsedInput,
    UnreadableLine,
    json_depth,
)


@Predictor.register("ner")
class NerPredictor(Predictor):
    """
    Tags raw text with a `crf_tagger`/`simple_tagger`-style model and returns its entities with
    character offsets. Needs no download (see `ner_elmo.data.text_segmentation`).

    Registered as a `Predictor` with name "ner".

    Each input (one JSON line) is an object with exactly one of:

    * `"text"`: raw text, possibly several sentences and paragraphs;
    * `"sentence"`: one sentence, tokenized but not split into sentences;
    * `"tokens"`: a list of non-empty token strings (one sentence); the text is the tokens
      joined with single spaces, and offsets refer to that string.

    Other keys (an `"id"`, say) are copied to the output unchanged, before the predictor's own;
    using a reserved key (`RESERVED_KEYS`) for anything else is an error.

    The output of one input is

        {..., "text": str, "tokens": [str], "token_offsets": [[start, end]], "tags": [str],
         "entities": [{"text", "label", "start", "end", "token_start", "token_end", "score"}],
         "sentences": [{"start", "end", "token_start", "token_end"}]}

    where `start`/`end` are character offsets into `"text"` (Python string indices, i.e.
    Unicode code points; `end` exclusive: `text[start:end] == entity["text"]`) and
    `token_start`/`token_end` index the whole input's `"tokens"` list (`token_end` exclusive,
    like a Python slice). `score` is the probability, under the model, that the span is an
    entity of that type (`ner_elmo.modules.entity_confidence`; a CRF's exact one, a softmax
    tagger's with the tokens taken as independent). Sentences longer than `max_sentence_tokens` are tagged as several
    pieces, each listed in `"sentences"`; no entity crosses a piece boundary.

    An input that cannot be tagged (not JSON, not an object, no or several text keys, wrong
    types, no tokens in the text) gives `{..., "error": "<why>"}` instead: one output per input,
    always, and never an exception.

    All sentences of the inputs given to `predict_batch_json` go through the model together,
    sorted by length, in batches of `batch_size`; outputs come back in input order and do not
    depend on the batch size.

    # Parameters

    model : `Model`
        A tagger whose `forward_on_instances` returns `"tags"` as tag strings (allennlp-models'
        `crf_tagger`, allennlp's `simple_tagger`, or this package's `ner_crf_tagger` and
        `ner_simple_tagger`).
    dataset_reader : `DatasetReader`
        Its `text_to_instance(tokens)` builds the model's instances (`ner_conll`,
        `ner_gmb_csv` or allennlp's `conll2003`).
    frozen : `bool`, optional (default = `True`)
        Put the model in eval mode.
    label_encoding : `str`, optional (default = `None`)
        The scheme of the model's tags (`"BIOUL"`, `"BIO"`, `"IOB1"`, `"BIOES"`). By default the
        model's `label_encoding`, else the dataset reader's.
    batch_size : `int`, optional (default = `32`)
        Sentences per forward pass.
    max_sentence_tokens : `int`, optional (default = `200`)
        Longer sentences are cut into pieces of at most this many tokens.
    max_token_chars : `int`, optional (default = `50`)
        The model sees at most this many leading characters of a token (ELMo reads 50 anyway),
        so that one very long "word" cannot blow up a character-level batch. Outputs keep the
        whole token.
    max_run_chars : `int`, optional (default = `50`)
        Runs of more characters without whitespace are cut into pieces of this many characters
        before tokenization, which keeps it linear in time (see
        `ner_elmo.data.text_segmentation`).
    max_text_chars : `int`, optional (default = `1_000_000`)
        An input whose text (or space-joined tokens) has more characters is an error that names
        this limit. `None`: no limit.
    max_json_depth : `int`, optional (default = `64`)
        A line whose JSON nests arrays and objects deeper is an error (not a crash).
    scores : `bool`, optional (default = `True`)
        Give each entity its `"score"` (a model with neither a CRF nor class probabilities has
        none).
    min_score : `float`, optional (default = `None`)
        Leave out entities scoring below it (their tags stay).
    """

    def __init__(
        self,
        model: Model,
        dataset_reader: DatasetReader,
        frozen: bool = True,
        label_encoding: Optional[str] = None,
        batch_size: int = 32,
        max_sentence_tokens: int = 200,
        max_token_chars: int = 50,
        max_run_chars: int = 50,
        max_text_chars: Optional[int] = 1_000_000,
        max_json_depth: int = 64,
        scores: bool = True,
        min_score: Optional[float] = None,
    ) -> None:
        super().__init__(model, dataset_reader, frozen)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"the ner predictor's batch_size must be a positive integer, got {batch_size!r}")
        try:
            self._inputs = InputReader(
                max_sentence_tokens=max_sentence_tokens,
                max_token_chars=max_token_chars,
                max_run_chars=max_run_chars,
                max_text_chars=max_text_chars,
                max_json_depth=max_json_depth,
            )
        except ValueError as error:
            raise ConfigurationError(f"the ner predictor's {error}") from None
        self._label_encoding = self._find_label_encoding(model, dataset_reader, label_encoding)
        self._batch_size = batch_size
        self._min_score = min_score
        namespace = getattr(model, "label_namespace", "labels")
        labels = [model.vocab.get_token_from_index(i, namespace) for i in range(model.vocab.get_vocab_size(namespace))]
        self._scorer = EntityScorer(labels, self._label_encoding) if scores else None

    @staticmethod
    def _find_label_encoding(
        model: Model, dataset_reader: DatasetReader, label_encoding: Optional[str]
    ) -> str:
        scheme = (
            label_encoding
            or getattr(model, "label_encoding", None)
            or getattr(dataset_reader, "label_encoding", None)
        )
        if not scheme:
            raise ConfigurationError(
                "cannot tell which tag scheme the model predicts: it has no label_encoding; "
                'pass one, e.g. --predictor-args \'{"label_encoding": "BIOUL"}\''
            )
        try:
            scheme = normalize_scheme(scheme)
        except ValueError as error:
            raise ConfigurationError(str(error)) from None
        # Every tag the model can predict must read in that scheme: fail now, not mid-file.
        namespace = getattr(model, "label_namespace", "labels")
        labels = list(model.vocab.get_token_to_index_vocabulary(namespace))
        try:
            validate_tags(labels, scheme)
        except TagSchemeError as error:
            raise ConfigurationError(
                f"the model's {namespace!r} vocabulary does not fit label encoding {scheme}: "
                f"{error}"
            ) from None
        return scheme

    @property
    def label_encoding(self) -> str:
        return self._label_encoding

    # ----------------------------------------------------------------------------------------
    # JSON lines in and out (`ner_elmo.runtime.inputs`, shared with the torch-only tagger).

    def load_line(self, line: str) -> JsonDict:
        """
        The line's JSON value, or an `UnreadableLine` for a blank or malformed line, or one
        whose arrays and objects nest deeper than `max_json_depth`.
        """
        return self._inputs.load_line(line)

    def dump_line(self, outputs: JsonDict) -> str:
        """One JSON object per line (`InputReader.dump_line`)."""
        return self._inputs.dump_line(outputs)

    def parse(self, value: Any) -> Union[ParsedInput, JsonDict]:
        """
        The input (a JSON value) split into sentences of tokens, as a `ParsedInput`, or the
        error output for an input that cannot be tagged.
        """
        return self._inputs.parse(value)

    # ----------------------------------------------------------------------------------------
    # Prediction.

    def predict_json(self, inputs: JsonDict) -> JsonDict:
        return self.predict_batch_json([inputs])[0]

    def predict_batch_json(self, inputs: List[JsonDict]) -> List[JsonDict]:
        return self.predict_parsed([self.parse(value) for value in inputs])

    def predict_parsed(self, requests: List[Union[ParsedInput, JsonDict]]) -> List[JsonDict]:
        """The outputs of inputs parsed by `parse` (an error output stays as it is)."""
        sentences = [
            sentence
            for request in requests
            if isinstance(request, ParsedInput)
            for sentence in request.sentences
        ]
        tagged = iter(self._tag_sentences(sentences))
        outputs: List[JsonDict] = []
        for request in requests:
            if not isinstance(request, ParsedInput):
                outputs.append(request)
                continue
            own = [next(tagged) for _ in request.sentences]
            score = None
            if self._scorer is not None and all(scores is not None for _, scores in own):
                scorer = self._scorer

                def score(index, label, start, end, own=own):
                    return scorer.probability(own[index][1], label, start, end)

            outputs.append(
                self._inputs.output(request, [tags for tags, _ in own], self._label_encoding, score, self._min_score)
            )
        return outputs

    def _tag_sentences(self, sentences: Sequence[List[TextToken]]) -> List[tuple]:
        """Each sentence's `(tags, SentenceScores or None)`; the model sees them sorted by
        length (less padding)."""
        tagged: List[Optional[tuple]] = [None] * len(sentences)
        order = sorted(range(len(sentences)), key=lambda index: len(sentences[index]))
        for begin in range(0, len(order), self._batch_size):
            batch = order[begin : begin + self._batch_size]
            instances = [self._instance(sentences[index]) for index in batch]
            outputs = self.predict_batch_instance(instances)
            scores = self._batch_scores(outputs, [len(sentences[index]) for index in batch])
            for index, output, sentence_scores in zip(batch, outputs, scores):
                # allennlp's simple_tagger also tags the batch's padding, which comes last.
                predicted = output["tags"][: len(sentences[index])]
                if len(predicted) != len(sentences[index]):
                    raise RuntimeError(
                        f"the model returned {len(predicted)} tags for "
                        f"{len(sentences[index])} tokens"
                    )
                tagged[index] = (predicted, sentence_scores)
        return tagged  # type: ignore[return-value]

    def _batch_scores(self, outputs: List[JsonDict], lengths: List[int]) -> List[Optional[SentenceScores]]:
        """Each sentence's forward-backward scores (`ner_elmo.modules.entity_confidence`)."""
        if self._scorer is None:
            return [None] * len(outputs)
        crf = getattr(self._model, "crf", None)
        if crf is not None and all("logits" in output for output in outputs):
            logits = torch.zeros(len(outputs), max(lengths), crf.num_tags)
            mask = torch.zeros(len(outputs), max(lengths), dtype=torch.bool)
            for row, (output, length) in enumerate(zip(outputs, lengths)):
                logits[row, :length] = torch.as_tensor(output["logits"][:length])
                mask[row, :length] = True
            return SentenceScores.batch_from_crf(logits, mask, *crf_scores(crf))
        if crf is None and all("class_probabilities" in output for output in outputs):
            return [
                SentenceScores.from_probabilities(output["class_probabilities"][:length])
                for output, length in zip(outputs, lengths)
            ]
        return [None] * len(outputs)

    def _instance(self, sentence: List[TextToken]) -> Instance:
        tokens = [
            Token(self._inputs.model_text(token), idx=token.start, idx_end=token.end)
            for token in sentence
        ]
        return self._dataset_reader.text_to_instance(tokens)
