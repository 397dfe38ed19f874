"""
Inputs and outputs of tagging, shared by the allennlp `ner` predictor and the torch-only tagger
(`ner_elmo.runtime.tagger`): JSON lines in (`InputReader.load_line`, `parse`), sentences of
tokens with character offsets (`ner_elmo.data.text_segmentation`), and the output object with
entities, their offsets and scores (`InputReader.output`). Neither torch nor allennlp is
imported, and spaCy only when raw text is first tokenized.
"""
import json
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ner_elmo.data.rule_tokenizer import RuleTokenizer
from ner_elmo.data.tag_schemes import to_spans
from ner_elmo.data.text_segmentation import (
    TextSegmenter,
    TextToken,
    replace_lone_surrogates,
    split_long_sentence,
)

JsonDict = Dict[str, Any]

#: Keys that hold the text to tag; an input object has exactly one of them.
INPUT_KEYS = ("text", "sentence", "tokens")
#: Keys the predictor writes (or `ner-predict` adds); an input may not use them for other data.
RESERVED_KEYS = frozenset(
    INPUT_KEYS + ("tags", "entities", "sentences", "token_offsets", "error", "line")
)

#: Decimals of an entity's `"score"` in outputs.
SCORE_DECIMALS = 4

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
    What `InputReader.load_line` returns for a line it cannot parse (blank, not JSON, not
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


class InputReader:
    """
    Reads inputs into sentences of tokens and writes the output of one input; what the `ner`
    predictor's docstring says of inputs, outputs and limits is what this class does.

    # Parameters

    max_sentence_tokens, max_token_chars, max_run_chars, max_text_chars, max_json_depth :
        As for the `ner` predictor (`ner_elmo.predictors.ner.NerPredictor`).
    rules : `RuleTokenizer`, optional (default = `None`: spaCy)
        Tokenize raw text with these rules (a bundle's `tokenizer.json`: the same tokens without
        importing spaCy).
    """

    def __init__(
        self,
        max_sentence_tokens: int = 200,
        max_token_chars: int = 50,
        max_run_chars: int = 50,
        max_text_chars: Optional[int] = 1_000_000,
        max_json_depth: int = 64,
        rules: Optional[RuleTokenizer] = None,
    ) -> None:
        limits = dict(
            max_sentence_tokens=max_sentence_tokens,
            max_token_chars=max_token_chars,
            max_run_chars=max_run_chars,
            max_text_chars=1 if max_text_chars is None else max_text_chars,
            max_json_depth=max_json_depth,
        )
        bad = {name: value for name, value in limits.items() if not isinstance(value, int) or value < 1}
        if bad:
            raise ValueError(
                "the sizes must be positive integers, got "
                + ", ".join(f"{name}={value!r}" for name, value in bad.items())
            )
        self._max_sentence_tokens = max_sentence_tokens
        self._max_token_chars = max_token_chars
        self._max_text_chars = max_text_chars
        self._max_json_depth = max_json_depth
        self._segmenter = TextSegmenter(max_sentence_tokens=max_sentence_tokens, max_run_chars=max_run_chars, rules=rules)

    def settings(self) -> Dict[str, Any]:
        """The constructor's arguments, as a bundle's config.json records them."""
        return {
            "max_sentence_tokens": self._max_sentence_tokens,
            "max_token_chars": self._max_token_chars,
            "max_run_chars": self._segmenter.max_run_chars,
            "max_text_chars": self._max_text_chars,
            "max_json_depth": self._max_json_depth,
        }

    def model_text(self, token: TextToken) -> str:
        """What the model reads of a token: at most `max_token_chars` leading characters, a lone
        surrogate replaced (the output keeps the whole token)."""
        return replace_lone_surrogates(token.text[: self._max_token_chars])

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

    def output(
        self,
        request: ParsedInput,
        sentence_tags: List[List[str]],
        label_encoding: str,
        entity_score: Optional[Callable[[int, str, int, int], float]] = None,
        min_score: Optional[float] = None,
    ) -> JsonDict:
        """
        The output object of `request` from each sentence's tags (in `label_encoding`).
        `entity_score(sentence, label, start, end)`, when given, scores each entity (its
        `"score"`, see `ner_elmo.modules.entity_confidence`); entities scoring below `min_score`
        are left out of `"entities"` (their tags stay).
        """
        text = request.text
        tokens: List[TextToken] = []
        tags: List[str] = []
        entities: List[JsonDict] = []
        sentences: List[JsonDict] = []
        for index, (sentence, predicted) in enumerate(zip(request.sentences, sentence_tags)):
            first = len(tokens)
            for label, start, end in to_spans(predicted, label_encoding):
                char_start, char_end = sentence[start].start, sentence[end - 1].end
                entity = {
                    "text": text[char_start:char_end],
                    "label": label,
                    "start": char_start,
                    "end": char_end,
                    "token_start": first + start,
                    "token_end": first + end,
                }
                if entity_score is not None:
                    # Four decimals: what a threshold needs, and stable across batch compositions.
                    entity["score"] = round(entity_score(index, label, start, end), SCORE_DECIMALS)
                    if min_score is not None and entity["score"] < min_score:
                        continue
                entities.append(entity)
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
