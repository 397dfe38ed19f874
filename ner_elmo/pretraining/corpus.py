"""
Plain-text corpora for biLM pretraining: reading files and folders (one sentence or document
per line, UTF-8), tokenizing them as the `ner` predictor does, and the frequency-sorted
vocabulary.

Tokenization (`tokenizer="spacy"`, the default) is `ner_elmo.data.text_segmentation.
TextSegmenter.sentences`, exactly what the `ner` predictor applies to a `"text"` input: spaCy's
blank English tokenizer with CoNLL-2003's hyphen handling and the rule-based sentencizer, so a
line holding a document becomes several sentences and the tokens match the ones the NER model
sees.  `tokenizer="whitespace"` takes each line as one already tokenized sentence (as CoNLL's
and lm1b's files are), and needs no spaCy.

A tokenized corpus is kept as numbers: `types` (the distinct tokens; for a training corpus
sorted by frequency, so a token's type is its rank in the vocabulary), `tokens` (the type of
every token, sentence after sentence) and `lengths` (tokens per sentence).  The first types are
always `<S>`, `</S>` and `<UNK>`.
"""
import hashlib
import json
import os
from array import array
from pathlib import Path
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy

from ner_elmo.common.atomic_write import atomic_open
from ner_elmo.data.errors import DataFormatError
from ner_elmo.modules.elmo import char_ids

BOS, EOS, UNK = 0, 1, 2
SPECIAL_TYPES = (char_ids.BOS_TOKEN, char_ids.EOS_TOKEN, "<UNK>")
TOKENIZERS = ("spacy", "whitespace")
CORPUS_FORMAT = 1

PathLike = Union[str, os.PathLike]


class CorpusError(DataFormatError):
    """A corpus that cannot be trained on (names the file, and the line where one applies)."""


def corpus_files(paths: Sequence[PathLike]) -> List[Path]:
    """The files of `paths` in order: files as given, folders' files (recursively, hidden ones
    skipped) sorted by path."""
    files: List[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise CorpusError(path, None, "the folder holds no files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"corpus file {path} not found")
    if not files:
        raise ValueError("no corpus files given")
    return files


def read_lines(path: PathLike) -> Iterator[Tuple[int, str]]:
    """(1-based line number, text) of a UTF-8 file, split on "\\n"; a first-line byte-order mark
    is dropped.  A NUL byte or bytes that are not UTF-8 raise `CorpusError` naming the line."""
    for number, text, _ in _read_lines(path):
        yield number, text


def _read_lines(path: PathLike) -> Iterator[Tuple[int, str, int]]:
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, start=1):
            size = len(raw)
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            nul = raw.find(b"\x00")
            if nul >= 0:
                raise CorpusError(
                    path, number,
                    f"binary data (a NUL byte, byte {nul + 1} of the line): expected UTF-8 text, "
                    "one sentence or document per line",
                )
            try:
                yield number, raw.decode("utf-8"), size
            except UnicodeDecodeError as error:
                raise CorpusError(
                    path, number,
                    f"cannot decode byte 0x{raw[error.start]:02x} (byte {error.start + 1} of the line) "
                    "as utf-8: convert the file to UTF-8 first (e.g. iconv -f latin1 -t utf-8)",
                ) from None


class SentenceTokenizer:
    """
    Lines -> sentences of token strings.

    # Parameters

    kind : `str`, optional (default = `"spacy"`)
        `"spacy"`: the `ner` predictor's `TextSegmenter.sentences` (sentence splitting and
        tokenization); `"whitespace"`: one sentence per line, tokens separated by whitespace.
    max_sentence_tokens : `int`, optional (default = `200`)
        Longer sentences are cut into pieces (the predictor's default; whitespace: plain cuts).
    """

    def __init__(self, kind: str = "spacy", max_sentence_tokens: int = 200) -> None:
        if kind not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {kind!r}")
        self.kind = kind
        self.max_sentence_tokens = max_sentence_tokens
        self._segmenter = None
        if kind == "spacy":
            try:
                from ner_elmo.data.text_segmentation import TextSegmenter
            except ImportError as error:
                raise ImportError(
                    f"the spacy tokenizer needs spaCy ({error}): pip install spacy, or pass "
                    "--tokenizer whitespace for text that is already tokenized, or tokenize on "
                    "another machine with `python -m ner_elmo.pretraining prepare`"
                ) from error
            self._segmenter = TextSegmenter(max_sentence_tokens=max_sentence_tokens)

    def sentences(self, line: str) -> Iterator[List[str]]:
        if self._segmenter is not None:
            for sentence in self._segmenter.sentences(line):
                yield [token.text for token in sentence]
        else:
            words = line.split()
            for start in range(0, len(words), self.max_sentence_tokens):
                yield words[start:start + self.max_sentence_tokens]

    def describe(self) -> Dict[str, object]:
        return {"tokenizer": self.kind, "max_sentence_tokens": self.max_sentence_tokens}


class TokenizedText(NamedTuple):
    types: List[str]
    tokens: numpy.ndarray  # int32 type ids
    lengths: numpy.ndarray  # int32 tokens per sentence
    counts: numpy.ndarray  # int64 occurrences per type (sentence marks: one per sentence)

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def num_sentences(self) -> int:
        return int(self.lengths.shape[0])


def tokenize_files(files: Sequence[PathLike], tokenizer: SentenceTokenizer,
                   progress: Optional[Callable[[int, int, int], None]] = None) -> TokenizedText:
    """
    Read and tokenize `files`.  Types are numbered in order of first appearance (after the three
    special types); `progress(bytes_read, total_bytes, tokens)` is called every 2,000 lines.
    """
    type_ids: Dict[str, int] = {word: i for i, word in enumerate(SPECIAL_TYPES)}
    tokens = array("i")
    lengths = array("i")
    total_bytes = sum(os.path.getsize(path) for path in files)
    done_bytes = 0
    for path in files:
        for number, line, size in _read_lines(path):
            done_bytes += size
            for sentence in tokenizer.sentences(line):
                if not sentence:
                    continue
                for word in sentence:
                    index = type_ids.get(word)
                    if index is None:
                        index = type_ids[word] = len(type_ids)
                    tokens.append(index)
                lengths.append(len(sentence))
            if progress is not None and number % 2000 == 0:
                progress(done_bytes, total_bytes, len(tokens))
    token_array = numpy.frombuffer(tokens, dtype=numpy.int32).copy() if tokens else numpy.zeros(0, numpy.int32)
    length_array = numpy.frombuffer(lengths, dtype=numpy.int32).copy() if lengths else numpy.zeros(0, numpy.int32)
    counts = numpy.bincount(token_array, minlength=len(type_ids)).astype(numpy.int64)
    counts[BOS] = counts[EOS] = len(length_array)
    return TokenizedText(list(type_ids), token_array, length_array, counts)


def sort_by_frequency(text: TokenizedText) -> TokenizedText:
    """Renumber types by descending count (ties: first appearance), special types first."""
    counts = text.counts.copy()
    order = numpy.argsort(-counts[len(SPECIAL_TYPES):], kind="stable") + len(SPECIAL_TYPES)
    order = numpy.concatenate([numpy.arange(len(SPECIAL_TYPES)), order])
    rank = numpy.empty_like(order)
    rank[order] = numpy.arange(len(order))
    return TokenizedText(
        [text.types[i] for i in order],
        rank[text.tokens].astype(numpy.int32),
        text.lengths,
        counts[order],
    )


def vocabulary_size(text: TokenizedText, max_words: Optional[int], min_count: int) -> int:
    """Size of the softmax vocabulary of a frequency-sorted corpus: the special types and the
    `max_words` most frequent words seen at least `min_count` times."""
    words = int((text.counts[len(SPECIAL_TYPES):] >= min_count).sum())
    if max_words is not None:
        words = min(words, max_words)
    return len(SPECIAL_TYPES) + words


def char_id_table(types: Sequence[str]) -> numpy.ndarray:
    """`(len(types), 50)` int16 character ids (`char_ids.token_to_char_ids`) of every type."""
    table = numpy.empty((len(types), char_ids.MAX_WORD_LENGTH), dtype=numpy.int16)
    for i, word in enumerate(types):
        table[i] = char_ids.token_to_char_ids(word)
    return table


def _digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(files: Sequence[Path], tokenizer: SentenceTokenizer) -> Dict[str, object]:
    # Names, sizes and contents (not absolute paths or times): a prepared corpus copied to
    # another machine with its text is still recognised.
    return {
        "format": CORPUS_FORMAT,
        **tokenizer.describe(),
        "files": [{"name": Path(path).name, "bytes": os.path.getsize(path), "blake2b": _digest(Path(path))} for path in files],
    }


def save_tokenized(text: TokenizedText, directory: PathLike, manifest: Dict[str, object]) -> None:
    """Write `text` under `directory` (arrays, types, manifest last: its presence marks a
    complete copy), each file whole or absent (`atomic_open`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / "manifest.json"
    if manifest_path.exists():
        manifest_path.unlink()
    for name, write in (
        ("arrays.npz", lambda f: numpy.savez(f, tokens=text.tokens, lengths=text.lengths, counts=text.counts)),
        ("types.json", lambda f: f.write(json.dumps(text.types, ensure_ascii=False).encode("utf-8"))),
        ("manifest.json", lambda f: f.write(json.dumps(manifest, indent=1).encode("utf-8"))),
    ):
        with atomic_open(directory / name, "wb") as handle:
            write(handle)


def load_tokenized(directory: PathLike) -> Tuple[TokenizedText, Dict[str, object]]:
    directory = Path(directory)
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    with numpy.load(directory / "arrays.npz") as arrays:
        tokens, lengths, counts = arrays["tokens"], arrays["lengths"], arrays["counts"]
    types = json.loads((directory / "types.json").read_text(encoding="utf-8"))
    return TokenizedText(types, tokens, lengths, counts), manifest


def prepared_text(paths: Sequence[PathLike], tokenizer: SentenceTokenizer, cache_dir: PathLike,
                  frequency_sorted: bool, log: Callable[[str], None] = print) -> TokenizedText:
    """
    The tokenized text of `paths`, read from `cache_dir` when it was made from the same files
    (paths, sizes, modification times) with the same tokenizer, else tokenized and saved there.
    Raises `CorpusError` for text without a single token.
    """
    files = corpus_files(paths)
    manifest = _manifest(files, tokenizer)
    cache_dir = Path(cache_dir)
    if (cache_dir / "manifest.json").exists():
        text, cached = load_tokenized(cache_dir)
        if cached == manifest:
            return text
        log(f"{cache_dir}: the corpus or tokenizer changed: tokenizing again")
    names = ", ".join(str(path) for path in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    log(f"tokenizing {len(files)} file(s) ({names}) with the {tokenizer.kind} tokenizer")

    def progress(done: int, total: int, tokens: int) -> None:
        log(f"  {100.0 * done / max(total, 1):5.1f}% of {total:,} bytes, {tokens:,} tokens")

    text = tokenize_files(files, tokenizer, progress)
    if text.num_tokens == 0:
        what = "the file is empty" if all(os.path.getsize(f) == 0 for f in files) else "only blank lines"
        where = files[0] if len(files) == 1 else f"{files[0]} (and the {len(files) - 1} other files)"
        raise CorpusError(where, None, f"no tokens ({what}): expected UTF-8 text, one sentence or document per line")
    if frequency_sorted:
        text = sort_by_frequency(text)
    save_tokenized(text, cache_dir, manifest)
    log(f"  {text.num_tokens:,} tokens in {text.num_sentences:,} sentences, {len(text.types) - 3:,} distinct words")
    return text
