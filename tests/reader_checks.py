"""
What the tests of both NER dataset readers do: write a data file byte for byte, take the message
of the error a read raises, and read a file through allennlp's multi-process data loader.
"""
from collections import Counter
from pathlib import Path
from typing import Callable, Tuple, Union

import pytest
from allennlp.data import DatasetReader, Vocabulary
from allennlp.data.data_loaders import MultiProcessDataLoader

from ner_elmo.data.errors import DataFormatError


def write_file(path: Path, content: Union[str, bytes], encoding: str) -> str:
    """`content` written as it is (bytes, or text without newline translation); the path."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding=encoding, newline="")
    return str(path)


def read_error(read: Callable[..., object], path, **options) -> str:
    """The message of the `DataFormatError`, a `ValueError`, that `read(path, **options)` raises."""
    with pytest.raises(DataFormatError) as error:
        read(path, **options)
    assert isinstance(error.value, ValueError)
    return str(error.value)


def sentences_read_and_loaded(
    reader: DatasetReader, path: str, batch_size: int
) -> Tuple[Counter, Counter]:
    """
    How often each sentence (its words) comes out of `reader.read(path)`, and out of a
    `MultiProcessDataLoader` with two workers over the same file.
    """
    expected = Counter(tuple(instance["metadata"]["words"]) for instance in reader.read(path))
    loader = MultiProcessDataLoader(reader, path, batch_size=batch_size, num_workers=2)
    loader.index_with(Vocabulary.from_instances(reader.read(path)))
    seen = Counter(tuple(metadata["words"]) for batch in loader for metadata in batch["metadata"])
    return expected, seen
