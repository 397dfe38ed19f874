"""
Loading a model archive without trusting it.

allennlp's `load_archive` trusts its input twice over: a config's `"type"` that is not a
registered name but a dotted path (`"os.system"`) is imported and called with the config's
other keys, and the tar's members are extracted with no filter (`../x`, `/abs/x` and links
leaving the folder are all written). `load_archive_safely` is `load_archive` (same arguments,
same `Archive`) with three checks first, before anything is written or built:

* the tar's members are extracted with Python's `data` filter: no absolute path, no `..`, no
  link leaving the folder, no device or FIFO. An offending member is an `UnsafeArchiveError`
  naming it, and nothing at all is extracted;
* every `"type"` in the config, at any depth (overrides applied), must be a name registered
  with allennlp by an imported package; a dotted import path, or `"from_archive"` (which loads
  a second archive with allennlp's own, unchecked loader), is an `UntrustedConfigError` naming
  the key path and the value;
* `config.json` is read as JSON (allennlp evaluates it as Jsonnet, whose `import` reads
  any local file into the config);
* the weights file is read with `torch.load(..., weights_only=True)` (tensors and plain
  containers only, no pickled code), whatever torch's default.

`trust_archive=True` (the commands' `--trust-archive`) skips the type check, for an archive the
user wrote; the extraction filter and the weights-only reading always apply.
"""
import contextlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
from typing import Any, Dict, Iterator, Optional, Union

import torch
from allennlp.common import Params
from allennlp.common.params import parse_overrides, with_overrides
from allennlp.common.checks import ConfigurationError
from allennlp.common.file_utils import cached_path
from allennlp.common.registrable import Registrable
from allennlp.models.archival import (
    CONFIG_NAME,
    META_NAME,
    Archive,
    Meta,
    _check_version_compatibility,
    _load_dataset_readers,
    _load_model,
    get_weights_path,
)

logger = logging.getLogger(__name__)

#: Registered names that load something with allennlp's unchecked loader.
REFUSED_TYPES = frozenset({"from_archive"})

TRUST_HELP = (
    "load the archive even if its config names components by dotted import path (which runs "
    "their code): only for archives you wrote yourself"
)


class UnsafeArchiveError(ConfigurationError):
    """A tar member that would be written outside the extraction folder, or is not a plain file."""


class UntrustedConfigError(ConfigurationError):
    """A config whose `"type"` would import and run code that no imported package registered."""


def registered_names() -> frozenset:
    """Every name registered with allennlp's `Registrable`, for any base class, right now."""
    return frozenset(name for registry in Registrable._registry.values() for name in registry)


def check_registered_types(config: Any, source: str, path: str = "") -> None:
    """
    Raises `UntrustedConfigError` for the first `"type"` (at any depth of `config`) that is not
    a registered name, or is one of `REFUSED_TYPES`, naming `source`, the key path and the value.
    """
    names = registered_names()
    stack = [(path, config)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            if "type" in value:
                _check_type(value["type"], f"{where}.type" if where else "type", names, source)
            stack.extend((f"{where}.{key}" if where else str(key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}.{index}" if where else str(index), item) for index, item in enumerate(value))


def _check_type(value: Any, where: str, names: frozenset, source: str) -> None:
    if not isinstance(value, str):
        raise UntrustedConfigError(f"{source}: {where} is {value!r}: a component type must be a string")
    if value in REFUSED_TYPES:
        raise UntrustedConfigError(
            f"{source}: {where} is {value!r}, which loads another archive without these checks; "
            "pass --trust-archive (trust_archive=True) if you wrote both archives"
        )
    if value in names:
        return
    if "." in value:
        raise UntrustedConfigError(
            f"{source}: {where} is {value!r}, a dotted import path: loading it would import and "
            "run that code. Refused; pass --trust-archive (trust_archive=True) only if you wrote "
            "this archive"
        )
    raise UntrustedConfigError(
        f"{source}: {where} is {value!r}, which no imported package registered (is the package "
        "that provides it installed and imported, e.g. allennlp_models.tagging?)"
    )


def extract_safely(archive_path: Union[str, os.PathLike], destination: Union[str, os.PathLike]) -> None:
    """
    Extracts the tar `archive_path` into `destination` with the `data` filter, after checking
    every member: the first offending one is an `UnsafeArchiveError` naming it, and then nothing
    has been written.
    """
    destination = os.path.realpath(destination)
    with tarfile.open(archive_path, "r:*") as archive:
        members = archive.getmembers()
        for member in members:
            try:
                if os.path.isabs(member.name):  # the filter would strip the "/": refuse it instead
                    raise tarfile.AbsolutePathError(member)
                tarfile.data_filter(member, destination)
            except tarfile.FilterError as error:
                raise UnsafeArchiveError(
                    f"{archive_path}: refusing to extract member {member.name!r}: {error}"
                ) from None
        archive.extractall(destination, members=members, filter="data")


@contextlib.contextmanager
def serialization_directory(archive_file: Union[str, os.PathLike]) -> Iterator[str]:
    """
    The archive as a directory: a serialization directory as it is, a tar (path or URL)
    extracted safely into a temporary directory that is removed afterwards.
    """
    resolved = cached_path(archive_file)
    if os.path.isdir(resolved):
        yield resolved
        return
    temporary = tempfile.mkdtemp(prefix="ner-elmo-archive-")
    try:
        extract_safely(resolved, temporary)
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def read_weights(path: Union[str, os.PathLike], cuda_device: int = -1) -> Dict[str, torch.Tensor]:
    """A state dict, read as data only (`weights_only=True`): a pickle with code is refused."""
    location = "cpu" if cuda_device < 0 else f"cuda:{cuda_device}"
    try:
        # mmap: checking costs no copy of the tensors.
        return torch.load(path, map_location=location, weights_only=True, mmap=True)
    except Exception as error:  # torch's UnpicklingError says which global it refused
        raise UnsafeArchiveError(f"{path}: not a weights-only state dict: {error}") from None


def read_config(path: str, overrides: Union[str, Dict[str, Any]], source: str) -> Params:
    """The archived config, parsed as plain JSON, with `overrides` (a JSON(net) string or a dict)."""
    try:
        with open(path, "r", encoding="utf-8") as stream:
            config = json.load(stream)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ConfigurationError(f"{source}: cannot read the archived config as JSON: {error!r}") from None
    if not isinstance(config, dict):
        raise ConfigurationError(f"{source}: the archived config is not a JSON object")
    if isinstance(overrides, dict):
        overrides = json.dumps(overrides)
    parsed = parse_overrides(overrides) if overrides else {}
    return Params(with_overrides(config, parsed) if parsed else config)


def load_archive_safely(
    archive_file: Union[str, os.PathLike],
    cuda_device: int = -1,
    overrides: Union[str, Dict[str, Any]] = "",
    weights_file: Optional[str] = None,
    trust_archive: bool = False,
    source: Optional[str] = None,
) -> Archive:
    """
    allennlp's `load_archive` (same arguments and result) with the checks of this module:
    safe extraction, registered types only (unless `trust_archive`), weights as data only.
    `source` names the archive in errors (default: `archive_file`; give the original name
    when `archive_file` is a directory `serialization_directory` extracted).
    """
    import ner_elmo.plugin  # noqa: F401  (the registered names the check allows)

    source = source or str(archive_file)
    with serialization_directory(archive_file) as directory:
        config = read_config(os.path.join(directory, CONFIG_NAME), overrides, f"{source} ({CONFIG_NAME})")
        if not trust_archive:
            check_registered_types(config.as_dict(quiet=True), f"{source} ({CONFIG_NAME})")
        weights_path = weights_file or get_weights_path(directory)
        # Checked as data before allennlp reads it (allennlp's `torch.load` states no
        # `weights_only`); the state dict it then reads is the one checked here.
        read_weights(weights_path)
        dataset_reader, validation_dataset_reader = _load_dataset_readers(config.duplicate(), directory)
        model = _load_model(config.duplicate(), weights_path, directory, cuda_device)
        meta_path = os.path.join(directory, META_NAME)
        meta = Meta.from_path(meta_path) if os.path.exists(meta_path) else None
    if meta is not None:
        _check_version_compatibility(archive_file, meta)
    return Archive(
        model=model,
        config=config,
        dataset_reader=dataset_reader,
        validation_dataset_reader=validation_dataset_reader,
        meta=meta,
    )


def add_trust_archive_argument(parser: Any) -> None:
    """The `--trust-archive` flag of every command that loads an archive."""
    parser.add_argument("--trust-archive", action="store_true", help=TRUST_HELP)
