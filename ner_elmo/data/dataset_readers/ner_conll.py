"""
The `ner_conll` dataset reader: CoNLL-2003 and other column files of tagged tokens.
"""
import logging
import re
from typing import Dict, Iterable, List, Optional, Sequence, Union

from allennlp.common.checks import ConfigurationError
from allennlp.data.dataset_readers.dataset_reader import DatasetReader, PathOrStr
from allennlp.data.instance import Instance
from allennlp.data.token_indexers import TokenIndexer

from ner_elmo.data.dataset_readers.ner_reader import (
    join_sentences,
    LabelKey,
    NerDatasetReader,
    TaggedSentence,
    check_encoding,
    check_label_names,
    paused_garbage_collection,
    read_text,
)
from ner_elmo.data.errors import DataFormatError

logger = logging.getLogger(__name__)

_SPACES = re.compile(" +")
_SEPARATOR_NAMES = {"tab": "a tab", "space": "spaces", "whitespace": "whitespace"}
# CoNLL-2003 has 4 columns; a file with more whose every sentence is a single line holds
# sentences written one per line.
_MAX_TOKEN_COLUMNS = 4
_ONE_TOKEN_PER_LINE = "write one token per line with its tags, sentences separated by blank lines"


@DatasetReader.register("ner_conll")
class NerConllDatasetReader(NerDatasetReader):
    """
    Reads CoNLL-style column files: one token per line, its columns separated by spaces or a
    tab, sentences separated by blank lines. CoNLL-2003's four columns are

    ```
    WORD POS-TAG CHUNK-TAG NER-TAG
    ```

    Lines whose first field is `-DOCSTART-` separate documents and are skipped (like blank
    lines); every sentence becomes one `Instance` (fields: see `NerDatasetReader`). The file may
    use LF or CRLF line ends, start with a UTF-8 byte-order mark and end without a newline.

    Columns by count: the last column is the NER tag; with 3 or more columns the second is the
    POS tag (`token POS NER`, as in CoNLL-2002); with 4 or more the third is the chunk tag.
    Every token line of a file has the same number of columns and the same separator.

    Entity tags (`ner`, `chunk`, or a column given by index) are validated and converted from
    `coding_scheme` to `label_encoding`; POS tags are read as they are. On CoNLL-2003 with
    `label_encoding="BIOUL"` the instances equal those of allennlp-models' `conll2003` reader
    with `convert_to_coding_scheme="BIOUL"`.

    Malformed input raises `ner_elmo.data.errors.DataFormatError` (a `ValueError`) naming the
    file and the 1-based line: a line with too few or too many columns, mixed separators, an
    invalid tag (`X-PER`, `B-`, `b-PER`, `PER`), an undecodable byte, a file without any
    sentence, or sentences written one per line (`Anna sings in Paris NNP VBZ IN NNP O O O
    I-LOC`). The last is told by its shape: more than 4 columns and every sentence a single
    line (real multi-column files have multi-line sentences), so a file made only of
    one-token sentences with 5 or more columns is rejected too; one per line with sentences of
    different lengths fails as a line with the wrong number of columns.

    Registered as a `DatasetReader` with name "ner_conll" (allennlp-models' own CoNLL-2003
    reader is "conll2003").

    # Parameters

    token_indexers : `Dict[str, TokenIndexer]`, optional (default=`{"tokens": SingleIdTokenIndexer()}`)
        How the tokens are indexed.
    tag_label : `str` or `int`, optional (default=`"ner"`)
        The column that becomes the `tags` field: `"ner"`, `"pos"` or `"chunk"`, or a column
        index (`1` is the column after the token, `-1` the last), read as entity tags; `None`
        reads tokens only (then one-column files are fine).
    feature_labels : `Sequence[str]`, optional (default=`()`)
        Columns (`"ner"`, `"pos"`, `"chunk"`) loaded as extra fields `pos_tags`, `chunk_tags`,
        `ner_tags`, each in its own vocabulary namespace of the same name.
    coding_scheme : `str`, optional (default=`"auto"`)
        Scheme of the file's entity tags: `"IOB1"`, `"BIO"`, `"BIOUL"`, `"BIOES"` or `"auto"`
        (detected per file and per column; CoNLL-2003 is detected as IOB1).
    label_encoding : `str`, optional (default=`"BIOUL"`)
        Scheme of the entity tags in the instances: `"BIOUL"`, `"BIO"` or `"IOB1"` (or
        `"BIOES"`). Use the model's `label_encoding`.
    label_namespace : `str`, optional (default=`"labels"`)
        Vocabulary namespace of the `tags` field.
    encoding : `str`, optional (default=`"utf-8"`)
        Text encoding of the files.
    column_separator : `str`, optional (default=`"auto"`)
        `"auto"`: a line holding a tab is split on tabs, any other on runs of spaces (the whole
        file must use one kind); `"tab"`: tabs only (tokens may contain spaces); `"space"`: runs
        of spaces; `"whitespace"`: any run of whitespace (`str.split()`, like `conll2003`).
    document_context_tokens : `int`, optional (default=`0`)
        `0`: every sentence is an instance. `N > 0`: consecutive sentences of one document (the
        lines between two `-DOCSTART-` lines; the whole file when it has none) are joined, in
        order, into instances of at most `N` tokens (a longer sentence is an instance alone), so
        the encoder reads each sentence with its neighbours. Every token is still in exactly one
        instance, so token-level scores count the same tokens; `metadata` gets
        `"sentence_lengths"`.
    **kwargs
        Passed to `DatasetReader` (e.g. `max_instances`).
    """

    _LABELS = ("ner", "pos", "chunk")
    _SEPARATORS = ("auto", "tab", "space", "whitespace")

    def __init__(
        self,
        token_indexers: Optional[Dict[str, TokenIndexer]] = None,
        tag_label: Optional[Union[str, int]] = "ner",
        feature_labels: Sequence[str] = (),
        coding_scheme: str = "auto",
        label_encoding: str = "BIOUL",
        label_namespace: str = "labels",
        encoding: str = "utf-8",
        column_separator: str = "auto",
        document_context_tokens: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(
            token_indexers=token_indexers,
            tag_label=tag_label,
            feature_labels=feature_labels,
            coding_scheme=coding_scheme,
            label_encoding=label_encoding,
            label_namespace=label_namespace,
            **kwargs,
        )
        if isinstance(tag_label, bool) or (isinstance(tag_label, int) and tag_label == 0):
            raise ConfigurationError(
                f"tag_label {tag_label!r}: a column index must not be 0 (the token column)"
            )
        if tag_label is not None and not isinstance(tag_label, int):
            check_label_names([tag_label], self._LABELS, "tag_label")
        check_label_names(self.feature_labels, self._LABELS, "feature label")
        check_label_names([column_separator], self._SEPARATORS, "column_separator")
        check_encoding(encoding)
        self.encoding = encoding
        self.column_separator = column_separator
        if isinstance(document_context_tokens, bool) or not isinstance(document_context_tokens, int) \
                or document_context_tokens < 0:
            raise ConfigurationError(
                f"document_context_tokens {document_context_tokens!r}: expected 0 (one instance per "
                "sentence) or a positive number of tokens"
            )
        self.document_context_tokens = document_context_tokens

    def _is_chunk_label(self, label: LabelKey) -> bool:
        # A column chosen by index is read as entity tags: this is an NER reader.
        return label in ("ner", "chunk") or isinstance(label, int)

    @staticmethod
    def _column_index(label: LabelKey, n_columns: int) -> Optional[int]:
        """Where `label` is in a file of `n_columns` columns; `None` when it has no such column."""
        if isinstance(label, int):
            index = label if label >= 0 else n_columns + label
            return index if 1 <= index < n_columns else None
        if label == "ner":
            return n_columns - 1 if n_columns >= 2 else None
        if label == "pos":
            return 1 if n_columns >= 3 else None
        return 2 if n_columns >= 4 else None  # chunk

    def _read(self, file_path: PathOrStr) -> Iterable[Instance]:
        path = str(file_path)
        logger.info("Reading CoNLL sentences from %s", path)
        text = read_text(path, self.encoding)
        with paused_garbage_collection():
            sentences, descriptions, documents = self._parse(text, path)
            encoded = self._encode_labels(path, sentences, descriptions)
            lengths = None
            if self.document_context_tokens:
                sentences, encoded, lengths = join_sentences(
                    sentences, encoded, documents, self.document_context_tokens
                )
        yield from self._instances(sentences, encoded, lengths)

    def _split(self, content: str, kind: str) -> List[str]:
        if kind == "tab":
            return [field.strip(" ") for field in content.split("\t")]
        if kind == "space":
            return _SPACES.split(content)
        return content.split()

    def _parse(self, text: str, path: str):
        """The file's sentences and a description of each needed column (for messages)."""
        needed = self._needed_labels()
        sentences: List[TaggedSentence] = []
        documents: List[int] = []  # each sentence's document: -DOCSTART- lines counted before it
        document = 0
        words: List[str] = []
        lines: List[int] = []
        columns: Dict[LabelKey, List[str]] = {label: [] for label in needed}
        indices: Dict[LabelKey, int] = {}
        descriptions: Dict[LabelKey, str] = {}
        n_columns = 0  # set by the first token line
        first_line = 0
        first_kind = ""
        token_lines = 0

        def end_sentence() -> None:
            nonlocal words, lines, columns
            if words:
                sentences.append(TaggedSentence(words, lines, columns))
                documents.append(document)
                words, lines, columns = [], [], {label: [] for label in needed}

        raw_lines = text.split("\n")
        if raw_lines[-1] == "":
            raw_lines.pop()  # the final newline ends the last line; it does not start a new one
        for number, raw_line in enumerate(raw_lines, start=1):
            content = raw_line.strip(" \t\r")
            if not content.strip():
                end_sentence()
                continue
            if content.split(None, 1)[0] == "-DOCSTART-":
                end_sentence()
                document += 1
                continue
            if self.column_separator == "auto":
                kind = "tab" if "\t" in content else "space"
            else:
                kind = self.column_separator
            fields = self._split(content, kind)
            if kind == "tab" and "" in fields:
                raise DataFormatError(
                    path,
                    number,
                    f"column {fields.index('') + 1} is empty: columns are separated by one tab",
                )
            if not n_columns:
                n_columns, first_line, first_kind = len(fields), number, kind
                for label in needed:
                    index = self._column_index(label, n_columns)
                    if index is None:
                        raise DataFormatError(
                            path, number, self._missing_column_message(label, fields)
                        )
                    indices[label] = index
                    name = "" if isinstance(label, int) else f" ({label})"
                    descriptions[label] = f"column {index + 1}{name}"
            elif kind != first_kind:
                raise DataFormatError(
                    path,
                    number,
                    f"columns are separated by {_SEPARATOR_NAMES[kind]} but by "
                    f"{_SEPARATOR_NAMES[first_kind]} on line {first_line}: use one column "
                    "separator throughout the file",
                )
            elif len(fields) != n_columns:
                message = (
                    f"found {self._columns(len(fields))}, expected {n_columns} as on line "
                    f"{first_line}: {content!r}"
                )
                if token_lines == 1 and n_columns > _MAX_TOKEN_COLUMNS:
                    # Sentences of different lengths written one per line fail here.
                    message += f"; if each line is a sentence, {_ONE_TOKEN_PER_LINE}"
                raise DataFormatError(path, number, message)
            token_lines += 1
            words.append(fields[0])
            lines.append(number)
            for label, index in indices.items():
                columns[label].append(fields[index])
        end_sentence()
        if not sentences:
            what = "the file is empty" if not text.strip() else "only -DOCSTART- and blank lines"
            raise DataFormatError(
                path,
                max(1, len(raw_lines)),
                f"no sentences ({what}): expected lines of a token and its tags, sentences "
                "separated by blank lines",
            )
        if n_columns > _MAX_TOKEN_COLUMNS and all(len(sentence.words) == 1 for sentence in sentences):
            # Read on, each such line would be one token tagged with its sentence's last tag.
            raise DataFormatError(
                path,
                first_line,
                f"every sentence is one line of {n_columns} columns: this looks like one sentence "
                f"per line; {_ONE_TOKEN_PER_LINE}",
            )
        return sentences, descriptions, documents

    @staticmethod
    def _columns(count: int) -> str:
        return "1 column" if count == 1 else f"{count} columns"

    def _missing_column_message(self, label: LabelKey, fields: List[str]) -> str:
        found = self._columns(len(fields))
        if len(fields) == 1:
            return (
                f"found 1 column ({fields[0]!r}), expected a token followed by its tags, "
                "separated by spaces or a tab"
            )
        if isinstance(label, int):
            return f"found {found}, so there is no column {label} for the tags"
        needs = {"pos": "3 columns (token POS ... NER)", "chunk": "4 columns (token POS chunk NER)"}
        return f"found {found}, but reading {label} tags needs at least {needs[label]}"
