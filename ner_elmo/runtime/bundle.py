"""
The bundle: a trained tagger as a directory of data, which `allennlp ner-export` writes from an
archive and `ner_elmo.load` reads without allennlp.

    config.json            the format, the architecture, the tokenizer's settings, the label
                           encoding, the project version, and the SHA-256 of every other file
    weights.safetensors    every tensor of the network (safetensors: no pickle)
    vocabulary.json        each vocabulary namespace as a list of strings, index order
    tokenizer.json         the tokenizer's and sentencizer's rules (`ner_elmo.data.rule_tokenizer`),
                           so raw text is tokenized as in training without spaCy
    MODEL_CARD.md          what the model is (generated from the archive; not read)

Reading executes nothing from the bundle: JSON and safetensors only, no dotted types; every
listed file is checked against its hash before anything is built, and a missing, altered or
unlisted required file is a `BundleError` naming it.
"""
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Union

FORMAT = "ner-elmo-bundle"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
VOCABULARY_NAME = "vocabulary.json"
TOKENIZER_NAME = "tokenizer.json"
MODEL_CARD_NAME = "MODEL_CARD.md"
#: The files every bundle has besides config.json (the model card is listed but not needed).
REQUIRED = (WEIGHTS_NAME, VOCABULARY_NAME)


class BundleError(ValueError):
    """A bundle that cannot be loaded: the message names the file and why."""


def sha256(path: Union[str, os.PathLike]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_bundle(path: Union[str, os.PathLike]) -> bool:
    return Path(path).is_dir() and (Path(path) / CONFIG_NAME).is_file()


def has_onnx(path: Union[str, os.PathLike]) -> bool:
    """Whether the bundle was exported with `--onnx` (its config names an ONNX network)."""
    try:
        config = json.loads((Path(path) / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False  # `read_config` says what is wrong with it
    return isinstance(config, dict) and isinstance(config.get("onnx"), dict)


def read_config(directory: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The bundle's `config.json`, after checking every file it lists against its hash."""
    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise BundleError(f"{path}: missing; a bundle directory written by `allennlp ner-export` has one")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{path}: not a JSON file ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise BundleError(f"{path}: not a ner-elmo bundle's config (its \"format\" is not {FORMAT!r})")
    if config.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format version {config.get('format_version')!r}; this ner_elmo reads "
            f"version {FORMAT_VERSION}: export the archive again with this version"
        )
    files = config.get("files")
    if not isinstance(files, dict) or any(name not in files for name in REQUIRED):
        raise BundleError(f"{path}: \"files\" must list {', '.join(REQUIRED)} with their SHA-256")
    for name, expected in files.items():
        member = directory / name
        # Only plain names inside the bundle: a listed "../x" must not read outside it.
        if not isinstance(name, str) or Path(name).name != name or name == CONFIG_NAME:
            raise BundleError(f"{path}: \"files\" lists {name!r}, which is not a file name of the bundle")
        if not member.is_file():
            raise BundleError(f"{member}: missing (listed in {CONFIG_NAME})")
        if sha256(member) != expected:
            raise BundleError(f"{member}: altered: its SHA-256 differs from the one {CONFIG_NAME} lists")
    return config


def read_vocabulary(directory: Union[str, os.PathLike]) -> Dict[str, List[str]]:
    path = Path(directory) / VOCABULARY_NAME
    vocabulary = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(vocabulary, dict) or not all(
        isinstance(tokens, list) and all(isinstance(token, str) for token in tokens) for tokens in vocabulary.values()
    ):
        raise BundleError(f"{path}: must map each namespace to a list of strings")
    return vocabulary


def read_tokenizer(directory: Union[str, os.PathLike], config: Dict[str, Any]):
    """The bundle's `RuleTokenizer`, or None for a bundle written without `tokenizer.json`
    (raw text is then tokenized by spaCy)."""
    from ner_elmo.data.rule_tokenizer import RuleTokenizer

    if TOKENIZER_NAME not in config["files"]:
        return None
    path = Path(directory) / TOKENIZER_NAME
    try:
        return RuleTokenizer(json.loads(path.read_text(encoding="utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, re.error) as error:
        raise BundleError(f"{path}: not tokenizer rules ({error})") from None


def read_weights(directory: Union[str, os.PathLike]):
    """The bundle's tensors (`safetensors`: data only)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(directory) / WEIGHTS_NAME
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise BundleError(f"{path}: not readable as safetensors ({error})") from None
