"""
spaCy's English tokenizer and sentencizer without spaCy: the same tokens and sentence starts
from the same rules, in pure Python (the `re` module), so that tagging raw text from a bundle
needs neither spaCy nor thinc (which imports torch when it is installed).

The rules are data: the prefix, suffix, infix and URL patterns, the special cases (each string
and its tokens) and the sentencizer's punctuation, as `RuleTokenizer.rules_of(nlp)` reads them
from a spaCy pipeline. `allennlp ner-export` stores them in a bundle's `tokenizer.json`, taken
from the very pipeline the `ner` predictor tokenizes with (`text_segmentation.blank_english`).

The algorithm is spaCy 3's (`Tokenizer.__call__` with `faster_heuristics`, then its special-case
matcher; the sentencizer's rule): text is cut into runs of whitespace and of non-whitespace, a
single space after a token being its trailing whitespace. A run that is a special case becomes
its tokens. Otherwise prefixes and suffixes are stripped one at a time, stopping when what is
left is a special case; what is left is a special case, a URL, or is split at its infixes.
Then token sequences that spell a special case containing affixes, longest first, become that
special case's tokens. A sentence starts at the first token after a sentence-final punctuation
token that is neither punctuation nor sentence-final itself. The tests compare the result with
spaCy's on corpora and on generated text.
"""
import re
import unicodedata
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

#: `rules` format version (a bundle's `tokenizer.json`).
RULES_VERSION = 1


class RuleToken(NamedTuple):
    """A token: its text, its offset in the tokenized string, and whether a space follows it."""

    text: str
    idx: int
    space: bool

    @property
    def is_space(self) -> bool:
        return self.text.isspace()


def _compile(pattern: Optional[Mapping[str, Any]]):
    return None if pattern is None else re.compile(pattern["pattern"], pattern["flags"])


def _is_punct(text: str) -> bool:
    return all(unicodedata.category(char).startswith("P") for char in text)


class RuleTokenizer:
    """
    Tokenizes and splits sentences as a spaCy pipeline with a tokenizer and a sentencizer does,
    from that pipeline's `rules` (see the module docstring).
    """

    def __init__(self, rules: Mapping[str, Any]) -> None:
        if rules.get("version") != RULES_VERSION:
            raise ValueError(f"tokenizer rules of version {rules.get('version')!r}; this reads version {RULES_VERSION}")
        self.rules = rules
        self._prefix = _compile(rules["prefix"])
        self._suffix = _compile(rules["suffix"])
        self._infix = _compile(rules["infix"])
        self._url = _compile(rules["url"])
        self._token_match = _compile(rules.get("token_match"))
        self._specials: Dict[str, List[str]] = {string: list(orths) for string, orths in rules["special_cases"].items()}
        self._punct_chars = frozenset(rules["punct_chars"])
        self._cache: Dict[str, List[str]] = {}
        # The special cases the matcher looks for after tokenization: those containing an affix
        # or a space, as the affixes alone (without special cases) tokenize them.
        self._patterns: Dict[str, List[Tuple[str, ...]]] = {}
        for string in self._specials:
            if self._find_prefix(string) or self._find_suffix(string) or self._find_infix(string) or " " in string:
                pattern = tuple(token.text for token in self._tokenize_runs(string, False))
                self._patterns.setdefault(pattern[0], []).append(pattern)
        self._longest_pattern = max((len(p) for ps in self._patterns.values() for p in ps), default=0)

    @classmethod
    def rules_of(cls, nlp) -> Dict[str, Any]:
        """The rules of a spaCy pipeline's tokenizer and sentencizer (when it has one), as JSON data."""
        tokenizer = nlp.tokenizer

        def pattern(function) -> Optional[Dict[str, Any]]:
            if function is None:
                return None
            compiled = getattr(function, "__self__", None)
            if not isinstance(compiled, re.Pattern):
                raise ValueError(f"the tokenizer's {function!r} is not a compiled regular expression's method")
            return {"pattern": compiled.pattern, "flags": compiled.flags}

        punct_chars = []
        if "sentencizer" in nlp.pipe_names:
            punct_chars = sorted(nlp.get_pipe("sentencizer").punct_chars)
        special_cases = {}
        for string, tokens in tokenizer.rules.items():
            special_cases[string] = [token[65] if 65 in token else token["ORTH"] for token in tokens]  # 65: ORTH
        return {
            "version": RULES_VERSION,
            "prefix": pattern(tokenizer.prefix_search),
            "suffix": pattern(tokenizer.suffix_search),
            "infix": pattern(tokenizer.infix_finditer),
            "url": pattern(tokenizer.url_match),
            "token_match": pattern(tokenizer.token_match),
            "special_cases": special_cases,
            "punct_chars": punct_chars,
            "faster_heuristics": bool(tokenizer.faster_heuristics),
        }

    # ----------------------------------------------------------------------------------------

    def __call__(self, text: str) -> List[RuleToken]:
        """The tokens of `text`, whitespace tokens included (as spaCy makes them)."""
        tokens = self._tokenize_runs(text, True)
        return self._apply_special_cases(text, tokens) if self._patterns else tokens

    def sentence_starts(self, tokens: List[RuleToken]) -> List[int]:
        """The indexes of the tokens that start a sentence (the first one included)."""
        if not tokens:
            return []
        starts = [0]
        seen_period = False
        for index, token in enumerate(tokens):
            final = token.text in self._punct_chars
            if seen_period and not final and not _is_punct(token.text):
                starts.append(index)
                seen_period = False
            elif final:
                seen_period = True
        return starts

    def _tokenize_runs(self, text: str, with_special_cases: bool) -> List[RuleToken]:
        tokens: List[RuleToken] = []
        if not text:
            return tokens
        start = 0
        in_whitespace = text[0].isspace()
        for position, char in enumerate(text):
            if char.isspace() != in_whitespace:
                if start < position:
                    self._add_run(tokens, text, start, position, with_special_cases)
                if char == " ":
                    tokens[-1] = tokens[-1]._replace(space=True)
                    start = position + 1
                else:
                    start = position
                in_whitespace = not in_whitespace
        if start < len(text):
            self._add_run(tokens, text, start, len(text), with_special_cases)
            tokens[-1] = tokens[-1]._replace(space=text[-1] == " " and not in_whitespace)
        return tokens

    def _add_run(self, tokens: List[RuleToken], text: str, start: int, end: int, with_special_cases: bool) -> None:
        run = text[start:end]
        pieces = self._cache.get(run) if with_special_cases else None
        if pieces is None:
            if with_special_cases and run in self._specials:
                pieces = self._specials[run]
            else:
                pieces = self._split(run, with_special_cases)
            if with_special_cases:
                if len(self._cache) > 100_000:
                    self._cache.clear()
                self._cache[run] = pieces
        offset = start
        for piece in pieces:
            tokens.append(RuleToken(piece, offset, False))
            offset += len(piece)

    def _find_prefix(self, string: str) -> int:
        match = self._prefix.search(string) if self._prefix is not None else None
        return match.end() - match.start() if match is not None else 0

    def _find_suffix(self, string: str) -> int:
        match = self._suffix.search(string) if self._suffix is not None else None
        return match.end() - match.start() if match is not None else 0

    def _find_infix(self, string: str) -> list:
        return list(self._infix.finditer(string)) if self._infix is not None else []

    def _split(self, string: str, with_special_cases: bool) -> List[str]:
        """A non-whitespace run's tokens: prefixes, the middle, suffixes (spaCy's affix loop)."""
        specials = self._specials if with_special_cases else {}
        prefixes: List[str] = []
        suffixes: List[str] = []
        last_size = 0
        while string and len(string) != last_size:
            if self._token_match is not None and self._token_match.match(string):
                break
            if string in specials:
                break
            last_size = len(string)
            pre_len = self._find_prefix(string)
            if pre_len:
                prefix, minus_pre = string[:pre_len], string[pre_len:]
                if minus_pre and minus_pre in specials:
                    string = minus_pre
                    prefixes.append(prefix)
                    break
            suf_len = self._find_suffix(string[pre_len:])
            if suf_len:
                suffix, minus_suf = string[-suf_len:], string[:-suf_len]
                if minus_suf and minus_suf in specials:
                    string = minus_suf
                    suffixes.append(suffix)
                    break
            if pre_len and suf_len and pre_len + suf_len <= len(string):
                string = string[pre_len:-suf_len]
                prefixes.append(prefix)
                suffixes.append(suffix)
            elif pre_len:
                string = minus_pre
                prefixes.append(prefix)
            elif suf_len:
                string = minus_suf
                suffixes.append(suffix)
        pieces = prefixes
        if string:
            if string in specials:
                pieces = pieces + specials[string]
            elif (self._token_match is not None and self._token_match.match(string)) or (
                self._url is not None and self._url.match(string)
            ):
                pieces = pieces + [string]
            else:
                matches = self._find_infix(string)
                if not matches:
                    pieces = pieces + [string]
                else:
                    pieces = list(pieces)
                    start = 0
                    for match in matches:
                        infix_start, infix_end = match.start(), match.end()
                        if infix_start == 0:
                            continue
                        if infix_start != start:
                            pieces.append(string[start:infix_start])
                        if infix_start != infix_end:
                            pieces.append(string[infix_start:infix_end])
                        start = infix_end
                    if string[start:]:
                        pieces.append(string[start:])
        return pieces + suffixes[::-1]

    def _apply_special_cases(self, text: str, tokens: List[RuleToken]) -> List[RuleToken]:
        """Token sequences spelling a special case with affixes become its tokens (longest
        first, then leftmost; a match whose first or last token is taken is dropped)."""
        matches = []
        texts = [token.text for token in tokens]
        for start, first in enumerate(texts):
            for pattern in self._patterns.get(first, ()):
                end = start + len(pattern)
                if tuple(texts[start:end]) == pattern:
                    matches.append((start, end))
        if not matches:
            return tokens
        matches.sort(key=lambda span: (-(span[1] - span[0]), span[0]))
        seen = set()
        kept = []
        for start, end in matches:
            if start not in seen and end - 1 not in seen:
                kept.append((start, end))
            seen.update(range(start, end))
        replaced: Dict[int, Tuple[int, List[str]]] = {}
        for start, end in kept:
            last = tokens[end - 1]
            string = text[tokens[start].idx : last.idx + len(last.text)]
            if string in self._specials:
                replaced[start] = (end, self._specials[string])
        if not replaced:
            return tokens
        result: List[RuleToken] = []
        index = 0
        while index < len(tokens):
            if index not in replaced:
                result.append(tokens[index])
                index += 1
                continue
            end, pieces = replaced[index]
            offset = tokens[index].idx
            for piece in pieces:
                result.append(RuleToken(piece, offset, False))
                offset += len(piece)
            result[-1] = result[-1]._replace(space=tokens[end - 1].space)
            index = end
        return result
