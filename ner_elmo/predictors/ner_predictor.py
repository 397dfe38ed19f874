"""
The offline NER predictor: raw text in, entities with character offsets out.
"""
import json
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from allennlp.common.checks import ConfigurationError
from allennlp.common.util import JsonDict
from allennlp.data import DatasetReader, Instance
from allennlp.data.tokenizers import Token
from allennlp.models import Model
from allennlp.predictors.predictor import Predictor

from ner_elmo.data.tag_schemes import TagSchemeError, normalize_scheme, to_spans, validate_tags
from ner_elmo.data.text_segmentation import (
    TextSegmenter,
    TextToken,
    replace_lone_surrogates,
    split_long_sentence,
)

#: Keys that hold the text to tag; an input object has exactly one of them.
INPUT_KEYS = ("text", "sentence", "tokens")
#: Keys the predictor writes (or `ner-predict` adds); an input may not use them for other data.
RESERVED_KEYS = frozenset(
    INPUT_KEYS + ("tags", "entities", "sentences", "token_offsets", "error", "line")
)

_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


class UnreadableLine(dict):
    """
    What `NerPredictor.load_line` returns for a line it cannot parse (blank, not JSON, not
    UTF-8): the predictor answers it with `{"error": reason}`. A `dict`, so that allennlp's
    `_PredictManager` can still `json.dumps` it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(error=reason)


class _InputError(ValueError):
    """An input that cannot be tagged; its message becomes the output's "error"."""


class ParsedInput:
    """One parsed input: its text, its sentences (token lists) and the keys to echo back."""

    def __init__(self, text: str, sentences: List[List[TextToken]], extra: Dict[str, Any]) -> None:
        self.text = text
        self.sentences = sentences
        self.extra = extra

    @property
    def token_count(self) -> int:
        return sum(len(sentence) for sentence in self.sentences)


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in `value` (a scalar: 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


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
         "entities": [{"text", "label", "start", "end", "token_start", "token_end"}],
         "sentences": [{"start", "end", "token_start", "token_end"}]}

    where `start`/`end` are character offsets into `"text"` (Python string indices, i.e.
    Unicode code points; `end` exclusive: `text[start:end] == entity["text"]`) and
    `token_start`/`token_end` index the whole input's `"tokens"` list (`token_end` exclusive,
    like a Python slice). Sentences longer than `max_sentence_tokens` are tagged as several
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
    ) -> None:
        super().__init__(model, dataset_reader, frozen)
        limits = dict(
            batch_size=batch_size,
            max_sentence_tokens=max_sentence_tokens,
            max_token_chars=max_token_chars,
            max_run_chars=max_run_chars,
            max_text_chars=1 if max_text_chars is None else max_text_chars,
            max_json_depth=max_json_depth,
        )
        bad = {name: value for name, value in limits.items() if not isinstance(value, int) or value < 1}
        if bad:
            raise ConfigurationError(
                "the ner predictor's sizes must be positive integers, got "
                + ", ".join(f"{name}={value!r}" for name, value in bad.items())
            )
        self._label_encoding = self._find_label_encoding(model, dataset_reader, label_encoding)
        self._batch_size = batch_size
        self._max_sentence_tokens = max_sentence_tokens
        self._max_token_chars = max_token_chars
        self._max_text_chars = max_text_chars
        self._max_json_depth = max_json_depth
        self._segmenter = TextSegmenter(max_sentence_tokens=max_sentence_tokens, max_run_chars=max_run_chars)

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
    # JSON lines in and out.

    def load_line(self, line: str) -> JsonDict:
        """
        The line's JSON value, or an `UnreadableLine` for a blank or malformed line, or one
        whose arrays and objects nest deeper than `max_json_depth`.
        """
        if not line.strip():
            return UnreadableLine("blank line")
        too_deep = UnreadableLine(
            f"JSON nested deeper than {self._max_json_depth} levels (max_json_depth)"
        )
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            return UnreadableLine(f"not valid JSON: {error}")
        except RecursionError:  # deeper than Python's recursion limit: far beyond ours
            return too_deep
        # Fewer brackets than the limit cannot nest deeper (a C-speed count: no walk of a
        # 400,000-token list on the service's event loop).
        if line.count("[") + line.count("{") <= self._max_json_depth:
            return value
        return too_deep if json_depth(value) > self._max_json_depth else value

    def dump_line(self, outputs: JsonDict) -> str:
        """
        One JSON object per line, non-ASCII characters written as themselves, except the
        characters `str.splitlines` breaks lines at (U+0085, U+2028, U+2029), which are escaped.
        """
        line = json.dumps(outputs, ensure_ascii=False)
        # Searches, not copies: the line of a 1 MB document is tens of MB.
        if _LONE_SURROGATE.search(line):  # from a "\ud800" escape: not UTF-8, keep it escaped
            line = json.dumps(outputs)
        elif _LINE_BREAKS.search(line):  # json.dumps writes them only inside strings
            line = _LINE_BREAKS.sub(lambda match: f"\\u{ord(match.group()):04x}", line)
        line += "\n"
        return line

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
        tags = iter(self._tag_sentences(sentences))
        outputs: List[JsonDict] = []
        for request in requests:
            if isinstance(request, ParsedInput):
                outputs.append(self._output(request, [next(tags) for _ in request.sentences]))
            else:
                outputs.append(request)
        return outputs

    def _tag_sentences(self, sentences: Sequence[List[TextToken]]) -> List[List[str]]:
        """Each sentence's tags; the model sees them sorted by length (less padding)."""
        tags: List[Optional[List[str]]] = [None] * len(sentences)
        order = sorted(range(len(sentences)), key=lambda index: len(sentences[index]))
        for begin in range(0, len(order), self._batch_size):
            batch = order[begin : begin + self._batch_size]
            instances = [self._instance(sentences[index]) for index in batch]
            for index, output in zip(batch, self.predict_batch_instance(instances)):
                # allennlp's simple_tagger also tags the batch's padding, which comes last.
                predicted = output["tags"][: len(sentences[index])]
                if len(predicted) != len(sentences[index]):
                    raise RuntimeError(
                        f"the model returned {len(predicted)} tags for "
                        f"{len(sentences[index])} tokens"
                    )
                tags[index] = predicted
        return tags  # type: ignore[return-value]

    def _instance(self, sentence: List[TextToken]) -> Instance:
        tokens = [
            Token(
                replace_lone_surrogates(token.text[: self._max_token_chars]),
                idx=token.start,
                idx_end=token.end,
            )
            for token in sentence
        ]
        return self._dataset_reader.text_to_instance(tokens)

    def _output(self, request: ParsedInput, sentence_tags: List[List[str]]) -> JsonDict:
        text = request.text
        tokens: List[TextToken] = []
        tags: List[str] = []
        entities: List[JsonDict] = []
        sentences: List[JsonDict] = []
        for sentence, predicted in zip(request.sentences, sentence_tags):
            first = len(tokens)
            for label, start, end in to_spans(predicted, self._label_encoding):
                char_start, char_end = sentence[start].start, sentence[end - 1].end
                entities.append(
                    {
                        "text": text[char_start:char_end],
                        "label": label,
                        "start": char_start,
                        "end": char_end,
                        "token_start": first + start,
                        "token_end": first + end,
                    }
                )
            tokens.extend(sentence)
            tags.extend(predicted)
            sentences.append(
                {
                    "start": sentence[0].start,
                    "end": sentence[-1].end,
                    "token_start": first,
                    "token_end": len(tokens),
                }
            )
        return {
            **request.extra,
            "text": text,
            "tokens": [token.text for token in tokens],
            "token_offsets": [[token.start, token.end] for token in tokens],
            "tags": tags,
            "entities": entities,
            "sentences": sentences,
        }

    # ----------------------------------------------------------------------------------------
    # Input validation.

    def parse(self, value: Any) -> Union[ParsedInput, JsonDict]:
        """
        The input (a JSON value) split into sentences of tokens, as a `ParsedInput`, or the
        error output for an input that cannot be tagged.
        """
        if isinstance(value, UnreadableLine):
            return {"error": value["error"]}
        if not isinstance(value, dict):
            got = _json_type(value)
            return {"error": f"expected a JSON object with a {_keys_phrase()} key, got {got}"}
        present = [key for key in INPUT_KEYS if key in value]
        extra = {key: item for key, item in value.items() if key not in INPUT_KEYS}
        reserved = sorted(key for key in extra if key in RESERVED_KEYS)
        if len(present) != 1:
            found = f"got {' and '.join(repr(key) for key in present)}" if present else "got none"
            return {**_safe(extra), "error": f"expected exactly one {_keys_phrase()} key, {found}"}
        if reserved:
            return {
                **_safe(extra),
                "error": f"input key(s) {', '.join(map(repr, reserved))} are reserved for the "
                "output: rename them",
            }
        key = present[0]
        try:
            text, sentences = self._segment(key, value[key])
        except _InputError as error:
            return {**extra, "error": str(error)}
        return ParsedInput(text, sentences, extra)

    def _segment(self, key: str, value: Any) -> Tuple[str, List[List[TextToken]]]:
        if key == "tokens":
            return self._from_tokens(value)
        if not isinstance(value, str):
            raise _InputError(f"{key!r} must be a string, got {_json_type(value)}")
        self._check_size(key, len(value))
        if key == "text":
            sentences = list(self._segmenter.sentences(value))
        else:
            sentences = list(self._segmenter.sentence_pieces(value))
        if not sentences:
            what = "empty" if not value else "only whitespace or control characters"
            raise _InputError(f"{key!r} has no tokens: it is {what}")
        return value, sentences

    def _from_tokens(self, value: Any) -> Tuple[str, List[List[TextToken]]]:
        if not isinstance(value, list):
            raise _InputError(f"'tokens' must be a list of strings, got {_json_type(value)}")
        if not value:
            raise _InputError("'tokens' is an empty list")
        tokens = []
        offset = 0
        for index, token in enumerate(value):
            if not isinstance(token, str):
                raise _InputError(f"'tokens'[{index}] must be a string, got {_json_type(token)}")
            if not token:
                raise _InputError(f"'tokens'[{index}] is an empty string")
            tokens.append(TextToken(token, offset, offset + len(token)))
            offset += len(token) + 1
        self._check_size("tokens", offset - 1)
        return " ".join(value), list(split_long_sentence(tokens, self._max_sentence_tokens))


    def _check_size(self, key: str, characters: int) -> None:
        if self._max_text_chars is not None and characters > self._max_text_chars:
            raise _InputError(
                f"{key!r} has {characters} characters, more than the limit of "
                f"{self._max_text_chars} (max_text_chars)"
            )


def _keys_phrase() -> str:
    return "/".join(repr(key) for key in INPUT_KEYS)


def _safe(extra: Dict[str, Any]) -> Dict[str, Any]:
    """The pass-through keys that may be echoed next to an error (never a reserved one)."""
    return {key: item for key, item in extra.items() if key not in RESERVED_KEYS}
