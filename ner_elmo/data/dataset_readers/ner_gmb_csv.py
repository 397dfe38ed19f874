"""
The `ner_gmb_csv` dataset reader: Kaggle's GMB-based `ner_dataset.csv`, split by sentence.
"""
import csv
import hashlib
import io
import logging
import math
import re
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from allennlp.common.checks import ConfigurationError
from allennlp.data.dataset_readers.dataset_reader import DatasetReader, PathOrStr
from allennlp.data.instance import Instance
from allennlp.data.token_indexers import TokenIndexer

from ner_elmo.data.dataset_readers.ner_reader import (
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

SPLITS = ("train", "validation", "test", "all")
DEFAULT_SPLIT_RATIOS = (0.8, 0.1, 0.1)
DEFAULT_SPLIT_SEED = 13

_SENTENCE_COLUMN = "Sentence #"
_WORD_COLUMN = "Word"
_LABEL_COLUMNS = {"ner": "Tag", "pos": "POS"}
_SENTENCE_ID = re.compile(r"(?:Sentence:\s*)?(\d+)")


def gmb_split(
    sentence_id: int,
    split_ratios: Sequence[float] = DEFAULT_SPLIT_RATIOS,
    split_seed: int = DEFAULT_SPLIT_SEED,
) -> str:
    """
    The split (`"train"`, `"validation"` or `"test"`) of the sentence `Sentence: <sentence_id>`.

    `u = int(sha256(f"{split_seed}:{sentence_id}").hexdigest()[:16], 16) / 16**16` is a uniform
    number in [0, 1) fixed by the seed and the id alone (not by the file's length or order):
    the sentence is in train when `u < r_train`, validation when `u < r_train + r_validation`,
    test otherwise. Any tool with SHA-256 reproduces it; the split sizes are the ratios up to
    sampling noise (for the Kaggle file with the defaults: 38,370 / 4,788 / 4,801 sentences,
    839,179 / 104,612 / 104,784 tokens).
    """
    key = f"{split_seed}:{sentence_id}".encode("ascii")
    u = int(hashlib.sha256(key).hexdigest()[:16], 16) / 16**16
    if u < split_ratios[0]:
        return "train"
    if u < split_ratios[0] + split_ratios[1]:
        return "validation"
    return "test"


def _quote_hint(row: List[str]) -> str:
    # A field holding a line break usually means a quote that was never closed.
    if any("\n" in field or "\r" in field for field in row):
        return "; a quote opened on this line may be unclosed"
    return ""


@DatasetReader.register("ner_gmb_csv")
class NerGmbCsvDatasetReader(NerDatasetReader):
    """
    Reads the Kaggle "Annotated Corpus for Named Entity Recognition" file `ner_dataset.csv`
    (GMB-based): a CSV with the header `Sentence #,Word,POS,Tag` and one token per row, where
    `Sentence #` (`Sentence: 1`, `Sentence: 2`, ...) is only filled on a sentence's first row.
    Tags are BIO with the types geo, org, per, gpe, tim, art, eve, nat.

    The file is read with Python's `csv` module, never pandas: words such as `NA`, `null`,
    `nan` or `None` stay words, quoted words may hold commas, and only the sentence column is
    carried forward. Rows are kept exactly as written (words are not stripped). The Kaggle
    file stops at Excel's row limit (1,048,575 rows after the header), so its last sentence
    may be cut short: it is read as it is.

    The corpus has no official split. Every sentence gets one by `gmb_split` (a SHA-256 of the
    seed and its sentence id, see there), so the splits are disjoint, cover the file, and are
    the same on every run and machine. Choose the split with the `split` argument, or per data
    path with a `#<split>` suffix, which wins over `split`, so one reader can serve a whole
    training config:

    ```
    train_data_path: "ner_dataset.csv#train",
    validation_data_path: "ner_dataset.csv#validation",
    test_data_path: "ner_dataset.csv#test",
    ```

    Each split is yielded in file order. The whole file is validated whatever the split, so
    malformed input fails the same way for all of them: `ner_elmo.data.errors.DataFormatError`
    (a `ValueError`) names the file and the 1-based line where the row starts, for a missing
    column, a row with the wrong number of fields (e.g. after an unclosed quote), a sentence id
    that is not `Sentence: <number>` (or a bare number) or repeats an earlier one, a first data
    row without a sentence id, an empty word, an invalid tag, an undecodable byte, or a file
    without data rows. Blank lines are skipped; extra columns and any column order are fine.

    Registered as a `DatasetReader` with name "ner_gmb_csv".

    # Parameters

    token_indexers : `Dict[str, TokenIndexer]`, optional (default=`{"tokens": SingleIdTokenIndexer()}`)
        How the tokens are indexed.
    split : `str`, optional (default=`None`)
        `"train"`, `"validation"`, `"test"` or `"all"`; a `#<split>` suffix on the path wins.
        With neither, reading fails: a config whose train and validation paths are the same
        file without suffixes would otherwise train and evaluate on the same sentences. Give
        `"all"` to read every sentence on purpose (e.g. to predict on the whole file).
    split_ratios : `Sequence[float]`, optional (default=`(0.8, 0.1, 0.1)`)
        Shares of train, validation and test; non-negative, summing to 1.
    split_seed : `int`, optional (default=`13`)
        Seed of the split.
    tag_label : `str`, optional (default=`"ner"`)
        `"ner"` (column `Tag`) or `"pos"` (column `POS`) becomes the `tags` field; `None` reads
        words only.
    feature_labels : `Sequence[str]`, optional (default=`()`)
        `"pos"` and/or `"ner"`, loaded as fields `pos_tags` / `ner_tags` (own namespaces).
    coding_scheme : `str`, optional (default=`"BIO"`)
        Scheme of the `Tag` column (`"auto"` detects it).
    label_encoding : `str`, optional (default=`"BIOUL"`)
        Scheme of the entity tags in the instances: `"BIOUL"`, `"BIO"` or `"IOB1"`.
    label_namespace : `str`, optional (default=`"labels"`)
        Vocabulary namespace of the `tags` field.
    encoding : `str`, optional (default=`"latin-1"`)
        Text encoding of the file (the Kaggle file is latin-1).
    **kwargs
        Passed to `DatasetReader` (e.g. `max_instances`).
    """

    def __init__(
        self,
        token_indexers: Optional[Dict[str, TokenIndexer]] = None,
        split: Optional[str] = None,
        split_ratios: Sequence[float] = DEFAULT_SPLIT_RATIOS,
        split_seed: int = DEFAULT_SPLIT_SEED,
        tag_label: Optional[str] = "ner",
        feature_labels: Sequence[str] = (),
        coding_scheme: str = "BIO",
        label_encoding: str = "BIOUL",
        label_namespace: str = "labels",
        encoding: str = "latin-1",
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
        if split is not None:
            check_label_names([split], SPLITS, "split")
        if tag_label is not None:
            check_label_names([tag_label], tuple(_LABEL_COLUMNS), "tag_label")
        check_label_names(self.feature_labels, tuple(_LABEL_COLUMNS), "feature label")
        ratios = tuple(float(ratio) for ratio in split_ratios)
        if len(ratios) != 3 or min(ratios) < 0 or not math.isclose(sum(ratios), 1.0):
            raise ConfigurationError(
                f"split_ratios {list(split_ratios)!r}: expected three non-negative shares "
                "(train, validation, test) summing to 1"
            )
        check_encoding(encoding)
        self.split = split
        self.split_ratios = ratios
        self.split_seed = split_seed
        self.encoding = encoding

    @staticmethod
    def split_path(file_path: PathOrStr) -> Tuple[str, Optional[str]]:
        """`("ner_dataset.csv", "train")` for `"ner_dataset.csv#train"`; no suffix: `None`."""
        path = str(file_path)
        base, hash_sign, suffix = path.rpartition("#")
        if hash_sign and base and suffix in SPLITS:
            return base, suffix
        return path, None

    def _read(self, file_path: PathOrStr) -> Iterable[Instance]:
        path, suffix = self.split_path(file_path)
        split = suffix or self.split
        if split is None:
            raise ConfigurationError(
                f"{path}: no split chosen for the GMB file, which has no official one: add "
                f"'#train', '#validation' or '#test' to the data path ({path}#train), or set the "
                "reader's split; split 'all' reads every sentence (never validate on what you train on)"
            )
        logger.info("Reading GMB sentences (%s) from %s", split, path)
        text = read_text(path, self.encoding)
        with paused_garbage_collection():
            sentences, ids, descriptions = self._parse(text, path)
            encoded = self._encode_labels(path, sentences, descriptions)
        if split != "all":
            keep = [
                index
                for index, sentence_id in enumerate(ids)
                if gmb_split(sentence_id, self.split_ratios, self.split_seed) == split
            ]
            sentences = [sentences[index] for index in keep]
            encoded = [encoded[index] for index in keep]
        yield from self._instances(sentences, encoded)

    def _parse(self, text: str, path: str):
        """The sentences, their ids and a description of each needed column."""
        rows = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(rows, None)
        except csv.Error as error:
            raise DataFormatError(path, rows.line_num, f"malformed CSV: {error}") from None
        if header is None:
            raise DataFormatError(
                path, 1, "the file is empty: expected the header 'Sentence #,Word,POS,Tag'"
            )
        needed = self._needed_labels()
        wanted = [_SENTENCE_COLUMN, _WORD_COLUMN] + [_LABEL_COLUMNS[label] for label in needed]
        for name in wanted:
            if name not in header:
                raise DataFormatError(
                    path,
                    1,
                    f"missing column {name!r}: the header has "
                    f"{', '.join(map(repr, header))}; expected 'Sentence #,Word,POS,Tag'",
                )
        sentence_column = header.index(_SENTENCE_COLUMN)
        word_column = header.index(_WORD_COLUMN)
        label_columns = {label: header.index(_LABEL_COLUMNS[label]) for label in needed}
        descriptions: Dict[LabelKey, str] = {
            label: f"column {_LABEL_COLUMNS[label]!r}" for label in needed
        }

        sentences: List[TaggedSentence] = []
        ids: List[int] = []
        first_line_of_id: Dict[int, int] = {}
        n_fields = len(header)
        # The loop runs once per token (a million times for the Kaggle file): keep it lean.
        label_appends: List[Tuple[int, Callable[[str], None]]] = []
        add_word = add_line = None
        previous_end = rows.line_num  # a quoted word may span lines: rows start after this
        try:
            for row in rows:
                line, previous_end = previous_end + 1, rows.line_num
                if len(row) != n_fields:
                    if not row:
                        continue  # a blank line holds no token
                    raise DataFormatError(
                        path,
                        line,
                        f"found {len(row)} fields, expected {n_fields} "
                        f"({','.join(header)}): {row!r}{_quote_hint(row)}",
                    )
                sentence_cell = row[sentence_column]
                if sentence_cell and not sentence_cell.isspace():
                    sentence_id = self._sentence_id(sentence_cell, path, line)
                    if sentence_id in first_line_of_id:
                        raise DataFormatError(
                            path,
                            line,
                            f"sentence id {sentence_id} was already used on line "
                            f"{first_line_of_id[sentence_id]}",
                        )
                    first_line_of_id[sentence_id] = line
                    ids.append(sentence_id)
                    sentence = TaggedSentence([], [], {label: [] for label in needed})
                    sentences.append(sentence)
                    add_word, add_line = sentence.words.append, sentence.lines.append
                    label_appends = [
                        (label_columns[label], sentence.columns[label].append) for label in needed
                    ]
                elif add_word is None:
                    raise DataFormatError(
                        path,
                        line,
                        f"the first data row has no sentence id in column {_SENTENCE_COLUMN!r}",
                    )
                word = row[word_column]
                if not word:
                    raise DataFormatError(path, line, f"empty word in column {_WORD_COLUMN!r}")
                add_word(word)
                add_line(line)
                for column, add_label in label_appends:
                    add_label(row[column])
        except csv.Error as error:
            raise DataFormatError(
                path,
                previous_end + 1,
                f"malformed CSV: {error}; a quote opened on this line may be unclosed",
            ) from None
        if not sentences:
            raise DataFormatError(
                path, max(1, rows.line_num), "no data rows: the file holds only its header"
            )
        return sentences, ids, descriptions

    @staticmethod
    def _sentence_id(cell: str, path: str, line: int) -> int:
        match = _SENTENCE_ID.fullmatch(cell.strip())
        if match is None:
            raise DataFormatError(path, line, f"sentence id {cell!r} is not 'Sentence: <number>'")
        return int(match.group(1))
