"""
Raw text -> sentences of tokens with character offsets into the original text, offline.

Uses spaCy's blank English tokenizer and its rule-based sentencizer: no model download. Two
changes bring the tokens closer to CoNLL-2003's: hyphenated words and dates stay whole
("Anglo-Dutch", "1996-08-22"), as in the Reuters data; "U.S." stays one token and "Smith's"
becomes "Smith" "'s", as spaCy does anyway.

Offsets are Python string indices (Unicode code points, not bytes or UTF-16 units), `end`
exclusive, so `text[token.start:token.end] == token.text` always holds. No character of the
input is changed, dropped or normalised; whitespace and tokens made only of control or format
characters (a lone zero-width joiner, "\\x00", a lone surrogate) are simply not tokens, and such
characters are trimmed from the edges of other tokens.

Long inputs are processed in chunks of at most `max_chunk_chars` characters, cut at paragraph
breaks (a line holding only whitespace), else at a line break, else at whitespace, else anywhere,
so memory stays bounded and spaCy's `max_length` is never reached. A paragraph break always ends
a sentence; so does a chunk cut, which only happens inside paragraphs longer than
`max_chunk_chars`. Sentences longer than `max_sentence_tokens` are cut into pieces, preferably
after punctuation, else between tokens separated by whitespace.

spaCy's tokenizer takes time quadratic in the length of a run of characters without whitespace
(its prefix and suffix search re-scans the rest of the run for every affix it strips: 20,000
closing parentheses take half a minute). So a run longer than `max_run_chars` is cut every
`max_run_chars` characters, and each piece is tokenized by spaCy on its own: the cuts are token
boundaries, and a run of punctuation becomes one token per character, as spaCy makes it anyway.
Tokenization is then linear in the text's length. Sentence splitting is unchanged (the
sentencizer runs on the whole chunk).
"""
import functools
import re
import unicodedata
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # spaCy is imported when text is first tokenized: pre-tokenized input never needs it
    from spacy.language import Language

    from ner_elmo.data.rule_tokenizer import RuleTokenizer

# A line holding only whitespace between two line breaks (\n, \r\n or \r), or U+2029.
_LINE_BREAK = r"(?:\r\n|\r(?!\n)|\n)"
_PARAGRAPH_BREAK = re.compile(rf"{_LINE_BREAK}[^\S\r\n]*(?:{_LINE_BREAK}[^\S\r\n]*)+|\u2029")
# Characters that never make or edge a token: control, format (ZWJ, ZWSP, BOM), separators,
# and lone surrogates (a JSON "\\ud800" escape gives one).
_NOT_TOKEN_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zs", "Zl", "Zp"))
# spaCy cannot hash a lone surrogate: it sees U+FFFD instead (same length, offsets unchanged).
_SURROGATE = re.compile("[\ud800-\udfff]")
# spaCy's infix between digits, minus the hyphen: "1996-08-22" stays one token.
_SPACY_DIGIT_OPERATOR_INFIX = r"(?<=[0-9])[+\-\*^](?=[0-9-])"
_DIGIT_OPERATOR_INFIX_WITHOUT_HYPHEN = r"(?<=[0-9])[+\*^](?=[0-9-])"


class TextToken(NamedTuple):
    """A token and its character span `[start, end)` in the original text (a tuple: light)."""

    text: str
    start: int
    end: int


@functools.lru_cache(maxsize=None)
def blank_english() -> "Language":
    """
    spaCy's blank English pipeline with a sentencizer and CoNLL-like hyphen handling, built once
    per process. Needs no download.
    """
    import spacy
    from spacy.lang.char_classes import HYPHENS
    from spacy.util import compile_infix_regex

    nlp = spacy.blank("en")
    infixes = []
    for rule in nlp.Defaults.infixes:
        if rule == _SPACY_DIGIT_OPERATOR_INFIX:
            rule = _DIGIT_OPERATOR_INFIX_WITHOUT_HYPHEN
        elif f"(?:{HYPHENS})" in rule:
            continue  # the letter-hyphen-letter split: CoNLL keeps "Anglo-Dutch" whole
        infixes.append(rule)
    nlp.tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    nlp.add_pipe("sentencizer")
    return nlp


def replace_lone_surrogates(text: str) -> str:
    """`text` with each lone surrogate (not UTF-8 encodable) replaced by U+FFFD: same length."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _is_edge_junk(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in _NOT_TOKEN_CATEGORIES


def _is_punctuation(text: str) -> bool:
    return all(unicodedata.category(char).startswith("P") for char in text)


def _make_token(text: str, start: int, end: int) -> Optional[TextToken]:
    """The token `text[start:end]` with control/format characters trimmed off its edges."""
    while start < end and _is_edge_junk(text[start]):
        start += 1
    while end > start and _is_edge_junk(text[end - 1]):
        end -= 1
    return TextToken(text[start:end], start, end) if start < end else None


def split_long_sentence(tokens: Sequence[TextToken], max_tokens: int) -> Iterator[List[TextToken]]:
    """
    Cut a sentence into pieces of at most `max_tokens` tokens. A cut goes after the last
    punctuation token of the window's second half, else before the last token of that half that
    is preceded by whitespace, else at `max_tokens`. Yields nothing for an empty sentence.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    begin = 0
    while len(tokens) - begin > max_tokens:
        limit = begin + max_tokens
        lowest = begin + max(1, max_tokens // 2)
        candidates = range(limit, lowest - 1, -1)  # cut before tokens[j]
        cut = next((j for j in candidates if _is_punctuation(tokens[j - 1].text)), None)
        if cut is None:
            cut = next((j for j in candidates if tokens[j].start > tokens[j - 1].end), limit)
        yield list(tokens[begin:cut])
        begin = cut
    if begin < len(tokens):
        yield list(tokens[begin:])


class TextSegmenter:
    """
    Splits raw text into sentences of `TextToken`s whose offsets index the original text.

    # Parameters

    max_sentence_tokens : `int`, optional (default = `200`)
        Longer sentences are cut into pieces of at most this many tokens.
    max_chunk_chars : `int`, optional (default = `100_000`)
        spaCy sees at most this many characters at a time (it must stay below spaCy's
        `max_length` of 1,000,000).
    max_run_chars : `int`, optional (default = `50`)
        Runs of more characters without whitespace are cut into pieces of this many characters
        before spaCy tokenizes them (see the module's docstring).
    rules : `RuleTokenizer`, optional (default = `None`)
        Tokenize and split sentences with these rules (`ner_elmo.data.rule_tokenizer`: spaCy's
        algorithm in pure Python, the same tokens) instead of spaCy itself.
    """

    def __init__(
        self,
        max_sentence_tokens: int = 200,
        max_chunk_chars: int = 100_000,
        max_run_chars: int = 50,
        rules: Optional["RuleTokenizer"] = None,
    ) -> None:
        if max_sentence_tokens < 1:
            raise ValueError(f"max_sentence_tokens must be at least 1, got {max_sentence_tokens}")
        if not 2 <= max_chunk_chars <= 1_000_000:
            raise ValueError(f"max_chunk_chars must be in [2, 1000000], got {max_chunk_chars}")
        if max_run_chars < 1:
            raise ValueError(f"max_run_chars must be at least 1, got {max_run_chars}")
        self.max_sentence_tokens = max_sentence_tokens
        self.max_chunk_chars = max_chunk_chars
        self.max_run_chars = max_run_chars
        self.rules = rules
        self._long_run = re.compile(r"\S{%d,}" % (max_run_chars + 1))

    def sentences(self, text: str) -> Iterator[List[TextToken]]:
        """
        The sentences of `text`, in order, each a non-empty list of tokens (at most
        `max_sentence_tokens`). Text holding no token (empty, only whitespace) yields nothing.
        """
        sentencizer = blank_english().get_pipe("sentencizer") if self.rules is None else None
        for chunk_start, chunk_end in self._chunks(text, paragraphs=True):
            doc = self._make_doc(replace_lone_surrogates(text[chunk_start:chunk_end]))
            if self.rules is None:
                sentences = sentencizer(doc).sents
            else:
                starts = self.rules.sentence_starts(doc) + [len(doc)]
                sentences = (doc[begin:end] for begin, end in zip(starts, starts[1:]))
            for sentence in sentences:
                tokens = self._tokens(text, chunk_start, sentence)
                yield from split_long_sentence(tokens, self.max_sentence_tokens)

    def sentence_pieces(self, text: str) -> Iterator[List[TextToken]]:
        """
        `text` tokenized as one sentence (no sentence splitting), cut into pieces of at most
        `max_sentence_tokens` tokens (and at chunk boundaries, for text over `max_chunk_chars`).
        """
        for chunk_start, chunk_end in self._chunks(text, paragraphs=False):
            doc = self._make_doc(replace_lone_surrogates(text[chunk_start:chunk_end]))
            tokens = self._tokens(text, chunk_start, doc)
            yield from split_long_sentence(tokens, self.max_sentence_tokens)

    def tokens(self, text: str) -> List[TextToken]:
        """All tokens of `text`, in order."""
        return [token for piece in self.sentence_pieces(text) for token in piece]

    def _make_doc(self, text: str):
        """The tokens of `text` (a spaCy `Doc`, or `RuleToken`s with `rules`), with runs over
        `max_run_chars` cut first (linear time)."""
        runs = list(self._long_run.finditer(text))
        if self.rules is not None:
            if not runs:
                return self.rules(text)
            tokens: list = []

            def add(piece: str, offset: int) -> None:
                tokens.extend(token._replace(idx=token.idx + offset) for token in self.rules(piece))

            self._pieces(text, runs, add)
            return tokens
        from spacy.tokens import Doc

        nlp = blank_english()
        if not runs:
            return nlp.make_doc(text)
        words: List[str] = []
        spaces: List[bool] = []

        def add(piece: str, offset: int) -> None:
            for token in nlp.make_doc(piece):
                words.append(token.text)
                spaces.append(bool(token.whitespace_))

        self._pieces(text, runs, add)
        # The pieces' tokens and whitespace spell `text` exactly, so the offsets are unchanged.
        return Doc(nlp.vocab, words=words, spaces=spaces)

    def _pieces(self, text: str, runs: list, add) -> None:
        """`add(piece, offset)` for the pieces of `text` that are tokenized apart: each long run
        cut every `max_run_chars` characters, and the text between runs."""
        position = 0
        for run in runs:
            if run.start() > position:
                add(text[position : run.start()], position)
            # The run's last piece takes the whitespace after it, as spaCy would attach it.
            after = run.end() + 1 if text[run.end() : run.end() + 1].isspace() else run.end()
            for begin in range(run.start(), run.end(), self.max_run_chars):
                end = min(begin + self.max_run_chars, run.end())
                add(text[begin : after if end == run.end() else end], begin)
            position = after
        if position < len(text):
            add(text[position:], position)

    @staticmethod
    def _tokens(text: str, offset: int, span) -> List[TextToken]:
        tokens = []
        for spacy_token in span:
            if spacy_token.is_space:
                continue
            start = offset + spacy_token.idx
            token = _make_token(text, start, start + len(spacy_token.text))
            if token is not None:
                tokens.append(token)
        return tokens

    def _chunks(self, text: str, paragraphs: bool) -> Iterator[Tuple[int, int]]:
        """`[start, end)` ranges covering every token of `text`, each at most `max_chunk_chars`."""
        start = 0
        if paragraphs:
            for match in _PARAGRAPH_BREAK.finditer(text):
                yield from self._bounded(text, start, match.start())
                start = match.end()
        yield from self._bounded(text, start, len(text))

    def _bounded(self, text: str, start: int, end: int) -> Iterator[Tuple[int, int]]:
        while end - start > self.max_chunk_chars:
            limit = start + self.max_chunk_chars
            lowest = start + self.max_chunk_chars // 2
            cut = text.rfind("\n", lowest, limit) + 1  # just after a line break
            if cut == 0:
                cut = next((j for j in range(limit, lowest, -1) if text[j - 1].isspace()), limit)
            yield start, cut
            start = cut
        if start < end:
            yield start, end
