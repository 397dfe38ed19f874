"""
What the NER dataset readers share: options, file reading and decoding, tag-scheme handling,
sharding and `text_to_instance`.
"""
import codecs
import contextlib
import gc
import logging
from typing import Any, Dict, Hashable, Iterable, Iterator, List, NamedTuple, Optional, Sequence
from typing import Union

from allennlp.common.checks import ConfigurationError
from allennlp.common.file_utils import cached_path
from allennlp.data.dataset_readers.dataset_reader import DatasetReader
from allennlp.data.fields import Field, MetadataField, SequenceLabelField, TextField
from allennlp.data.instance import Instance
from allennlp.data.token_indexers import SingleIdTokenIndexer, TokenIndexer
from allennlp.data.tokenizers import Token

from ner_elmo.data.errors import DataFormatError
from ner_elmo.data.tag_schemes import (
    TagSchemeError,
    convert,
    detect_scheme,
    normalize_scheme,
)

logger = logging.getLogger(__name__)

#: A label column's name in a reader (`"ner"`, `"pos"`, `"chunk"`) or, in the CoNLL reader, the
#: column's index.
LabelKey = Union[str, int]


class TaggedSentence(NamedTuple):
    """One sentence as a reader parsed it, before any tag conversion."""

    words: List[str]
    #: 1-based line of each token in its file (for error messages).
    lines: List[int]
    #: the raw values of each label column the reader needs, one per token.
    columns: Dict[LabelKey, List[str]]


def join_sentences(
    sentences: Sequence[TaggedSentence],
    encoded: Sequence[Dict[LabelKey, List[str]]],
    documents: Sequence[int],
    max_tokens: int,
):
    """
    Consecutive sentences of the same document joined, in order, into groups of at most
    `max_tokens` tokens (a longer sentence is a group alone): the joined sentences, their joined
    (already encoded) labels and the lengths of the sentences in each. Each sentence's tags were
    encoded on their own, so the concatenation is a valid sequence in the same scheme.
    """
    groups: List[List[int]] = []
    size = 0
    for index, sentence in enumerate(sentences):
        length = len(sentence.words)
        if groups and documents[groups[-1][-1]] == documents[index] and size + length <= max_tokens:
            groups[-1].append(index)
            size += length
        else:
            groups.append([index])
            size = length
    def joined(parts: Sequence[Dict[Any, List[str]]]) -> Dict[Any, List[str]]:
        return {key: [value for part in parts for value in part[key]] for key in parts[0]}

    joined_sentences = [
        TaggedSentence(
            [word for index in group for word in sentences[index].words],
            [line for index in group for line in sentences[index].lines],
            joined([sentences[index].columns for index in group]),
        )
        for group in groups
    ]
    labels = [joined([encoded[index] for index in group]) for group in groups]
    lengths = [[len(sentences[index].words) for index in group] for group in groups]
    return joined_sentences, labels, lengths


class NerDatasetReader(DatasetReader):
    """
    Base class of the NER dataset readers (`ner_conll`, `ner_gmb_csv`); not registered itself.

    Instances have the fields AllenNLP's `crf_tagger` (and `ner_crf_tagger`) consume:

    * `tokens`: a `TextField` (token indexers are attached by `apply_token_indexers`, so that
      instances built in data-loader workers travel without them);
    * `tags`: a `SequenceLabelField` in namespace `label_namespace` (only when tags are known),
      entity tags encoded in `label_encoding`;
    * one `SequenceLabelField` per feature label, e.g. `pos_tags` in namespace `pos_tags`;
    * `metadata`: `{"words": [token text, ...]}`.

    A subclass parses a file into `TaggedSentence`s, then calls `_encode_labels` (validation,
    scheme detection and conversion over the whole file, so that every data-loader worker sees
    the same errors) and `_instances` (which keeps only this worker's share).

    # Parameters

    token_indexers : `Dict[str, TokenIndexer]`, optional (default=`{"tokens": SingleIdTokenIndexer()}`)
        How the tokens are indexed.
    tag_label : `str`, optional (default=`"ner"`)
        Which label becomes the `tags` field; `None` reads tokens only (no `tags` field).
    feature_labels : `Sequence[str]`, optional (default=`()`)
        Labels loaded as extra `SequenceLabelField`s `<label>_tags`, each in its own namespace
        `<label>_tags` (as in allennlp-models' `conll2003` reader).
    coding_scheme : `str`, optional (default=`"auto"`)
        The entity-tag scheme of the input files: `"IOB1"`, `"BIO"` (`"IOB2"`), `"BIOUL"`,
        `"BIOES"` (`"IOBES"`), or `"auto"` to detect it per file and per column with
        `ner_elmo.data.tag_schemes.detect_scheme`. Tags are validated against it.
    label_encoding : `str`, optional (default=`"BIOUL"`)
        The scheme the entity tags are written in (use the model's `label_encoding`): one of the
        names above; AllenNLP's CRF constraints know `"IOB1"`, `"BIO"` and `"BIOUL"`. Tags are
        the canonical encoding of the entities read (`tag_schemes.convert`), so ill-formed input
        such as `O B-MISC` in IOB1 comes out well-formed (`O I-MISC`) with the same entities.
    label_namespace : `str`, optional (default=`"labels"`)
        Vocabulary namespace of the `tags` field.
    **kwargs
        Passed to `DatasetReader` (e.g. `max_instances`).
    """

    #: Labels holding entity-style chunk tags: validated and converted. Others pass unchanged.
    chunk_labels: Sequence[LabelKey] = ("ner",)

    def __init__(
        self,
        token_indexers: Optional[Dict[str, TokenIndexer]] = None,
        tag_label: Optional[LabelKey] = "ner",
        feature_labels: Sequence[str] = (),
        coding_scheme: str = "auto",
        label_encoding: str = "BIOUL",
        label_namespace: str = "labels",
        **kwargs,
    ) -> None:
        super().__init__(
            manual_distributed_sharding=True, manual_multiprocess_sharding=True, **kwargs
        )
        self._token_indexers = token_indexers or {"tokens": SingleIdTokenIndexer()}
        try:
            self.coding_scheme = (
                "auto" if coding_scheme == "auto" else normalize_scheme(coding_scheme)
            )
            self.label_encoding = normalize_scheme(label_encoding)
        except ValueError as error:
            raise ConfigurationError(str(error)) from None
        self.tag_label = tag_label
        self.feature_labels: List[str] = list(feature_labels)
        self.label_namespace = label_namespace

    # ----------------------------------------------------------------------------------------
    # Pieces the subclasses' `_read` use.

    def _needed_labels(self) -> List[LabelKey]:
        """`tag_label` (when set) and the feature labels, without repeats."""
        needed: List[LabelKey] = [] if self.tag_label is None else [self.tag_label]
        needed += [label for label in self.feature_labels if label not in needed]
        return needed

    def _is_chunk_label(self, label: LabelKey) -> bool:
        return label in self.chunk_labels

    def _encode_labels(
        self,
        path: str,
        sentences: Sequence[TaggedSentence],
        descriptions: Dict[LabelKey, str],
    ) -> List[Dict[LabelKey, List[str]]]:
        """
        Each sentence's label columns, chunk-style ones validated and re-encoded from
        `coding_scheme` (detected over all `sentences` when `"auto"`) to `label_encoding`.

        Raises `DataFormatError` naming `path`, the tag's line and `descriptions[label]`.
        """
        encoded: List[Dict[LabelKey, List[str]]] = [{} for _ in sentences]
        for label in self._needed_labels():
            sequences = [sentence.columns[label] for sentence in sentences]
            if not self._is_chunk_label(label):
                for labels, sequence in zip(encoded, sequences):
                    labels[label] = sequence
                continue
            scheme = self.coding_scheme
            index = 0
            try:
                if scheme == "auto":
                    scheme = detect_scheme(sequences)
                    logger.info("%s: %s tags read as %s", path, descriptions[label], scheme)
                for index, sequence in enumerate(sequences):
                    encoded[index][label] = convert(sequence, scheme, self.label_encoding)
            except TagSchemeError as error:
                if error.sequence_index is not None:
                    index = error.sequence_index
                position = error.position or 0
                raise DataFormatError(
                    path, sentences[index].lines[position], f"{descriptions[label]}: {error}"
                ) from None
        return encoded

    def _instances(
        self,
        sentences: Sequence[TaggedSentence],
        encoded: Sequence[Dict[LabelKey, List[str]]],
        sentence_lengths: Optional[Sequence[List[int]]] = None,
    ) -> Iterator[Instance]:
        """
        The instances of this worker's (and this node's) share of the sentences; for sequences
        of joined sentences, `sentence_lengths` go into each instance's metadata.
        """
        for index in self.shard_iterable(range(len(sentences))):
            labels = encoded[index]
            features = {f"{label}_tags": labels[label] for label in self.feature_labels}
            tags = None if self.tag_label is None else labels[self.tag_label]
            instance = self.text_to_instance(sentences[index].words, tags, **features)
            if sentence_lengths is not None:
                instance["metadata"].metadata["sentence_lengths"] = sentence_lengths[index]
            yield instance

    # ----------------------------------------------------------------------------------------

    def text_to_instance(  # type: ignore[override]
        self,
        tokens: Union[Sequence[Token], Sequence[str]],
        tags: Optional[Sequence[str]] = None,
        **features: Optional[Sequence[str]],
    ) -> Instance:
        """
        One sentence as an `Instance`.

        # Parameters

        tokens : `List[Token]` or `List[str]`
            The words; `Token`s are kept as given (e.g. with character offsets in `idx`).
        tags : `List[str]`, optional
            One tag per token, already in `label_encoding` (no conversion happens here).
        **features : `List[str]`
            Extra label sequences, e.g. `pos_tags=[...]`: each becomes a `SequenceLabelField`
            with that field name and vocabulary namespace. `None` values are skipped.
        """
        token_list = [token if isinstance(token, Token) else Token(token) for token in tokens]
        text_field = TextField(token_list)
        fields: Dict[str, Field] = {"tokens": text_field}
        if tags is not None:
            fields["tags"] = SequenceLabelField(list(tags), text_field, self.label_namespace)
        for name, values in features.items():
            if values is not None:
                fields[name] = SequenceLabelField(list(values), text_field, label_namespace=name)
        metadata: Dict[str, Any] = {"words": [token.text for token in token_list]}
        fields["metadata"] = MetadataField(metadata)
        return Instance(fields)

    def apply_token_indexers(self, instance: Instance) -> None:
        instance.fields["tokens"]._token_indexers = self._token_indexers  # type: ignore


@contextlib.contextmanager
def paused_garbage_collection() -> Iterator[None]:
    """
    Parsing a corpus allocates millions of small lists and strings, none in reference cycles;
    the cyclic collector would rescan them again and again (half the time on the GMB file).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_text(path: str, encoding: str) -> str:
    """The file at `path` (or what allennlp's `cached_path` makes of it), read by `decode_file`."""
    with open(cached_path(path), "rb") as data_file:
        return decode_file(data_file.read(), encoding, path)


def decode_file(data: bytes, encoding: str, path: str) -> str:
    """
    `data` decoded with `encoding`, without a leading byte-order mark; `DataFormatError` naming
    the line (and the byte in it) where decoding fails.
    """
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataFormatError(
            path,
            line,
            f"cannot decode byte 0x{data[error.start]:02x} (byte {column} of the line) as "
            f"{encoding}: set the reader's `encoding` to the file's encoding",
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def check_label_names(
    labels: Iterable[Hashable], valid: Sequence[str], what: str
) -> None:
    """`ConfigurationError` for a label name the reader does not know."""
    for label in labels:
        if label not in valid:
            raise ConfigurationError(
                f"unknown {what} {label!r}: expected one of {', '.join(map(repr, valid))}"
            )


def check_encoding(encoding: str) -> None:
    """`ConfigurationError` for a text encoding Python does not know."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigurationError(f"unknown encoding {encoding!r}") from None
