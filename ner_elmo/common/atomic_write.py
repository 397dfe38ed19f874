"""
Files that are whole or absent: write under a temporary name beside the destination, then rename
the finished file onto it (`os.replace`, atomic on POSIX), so a reader sees the old file or the
whole new one, never half of one. A failed write (a full disk, an error, Ctrl-C) removes the
temporary and leaves the destination as it was.

The one implementation of the idea in the package: checkpoints (`ner_atomic`, the
`ner_gradient_descent` trainer's `best.th`, the pretrainer's), model archives
(`ner_atomic_archive`), the pretrainer's text files, tokenized corpus and ELMo export,
`ner-predict`'s output file, `ner-spark`'s output directory and the disk activation cache write
through `atomic_path`, `atomic_paths`, `atomic_open` or `atomic_directory`.

Standard library only, as all of `ner_elmo.common` (`atomic_torch_save` imports torch when
called); the pretrainer imports it without allennlp.
"""
import contextlib
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import IO, Any, Iterator, List, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

# What `partial_name` appends; nothing else in the package writes names like it.
_PARTIAL = re.compile(r"\.partial-\d+-[0-9a-f]{8}$")


def partial_name(destination: str) -> str:
    """
    A fresh temporary name for `destination` (a path or a URL), beside it:
    `NAME.partial-PID-RANDOM`. It ends in no file type, so nothing that looks for `*.th`,
    `*.npy`, `model.tar.gz` or `part-*.parquet` finds it.
    """
    return f"{destination.rstrip('/')}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def partial_path(destination: PathLike) -> Path:
    """`partial_name` of a local path."""
    return Path(partial_name(os.fspath(Path(destination))))


@contextlib.contextmanager
def atomic_paths(*destinations: PathLike, durable: bool = True) -> Iterator[Tuple[Path, ...]]:
    """
    Yields a temporary path beside each destination for the body to write (for writers that take
    a path: `torch.save`, `tarfile`). When the body returns, the files are renamed onto
    their destinations, in the order given; when it raises (`KeyboardInterrupt` included), they
    are removed and every destination is left as it was. So files that belong together (an
    ELMo's options and weights) are replaced together or not at all: only a crash in the
    microseconds between two renames, which write no data, can replace one without the other
    (`atomic_directory` closes that gap). A process killed outright (SIGKILL) can leave
    temporary files behind (`remove_partials`), never a partial destination.

    # Parameters

    destinations : `PathLike`
        The files to write.
    durable : `bool`, optional (default = `True`)
        Also flush the files to disk before the renames and their directories after them, so
        the new files survive a crash of the machine, not only of the process. Leave it on
        except for caches, whose lost entries are only misses (it costs milliseconds per file).
    """
    destinations = tuple(Path(destination) for destination in destinations)
    temporaries = tuple(partial_path(destination) for destination in destinations)
    try:
        yield temporaries
        if durable:
            for temporary in temporaries:
                _fsync(temporary)
        for temporary, destination in zip(temporaries, destinations):
            os.replace(temporary, destination)
    except BaseException:
        for temporary in temporaries:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        raise
    if durable:
        for directory in dict.fromkeys(destination.parent for destination in destinations):
            _fsync_directory(directory)


@contextlib.contextmanager
def atomic_path(destination: PathLike, durable: bool = True) -> Iterator[Path]:
    """`atomic_paths` of one file: yields its temporary path."""
    with atomic_paths(destination, durable=durable) as (temporary,):
        yield temporary


@contextlib.contextmanager
def atomic_open(destination: PathLike, mode: str = "w", durable: bool = True, **open_kwargs: Any) -> Iterator[IO]:
    """
    `open(destination, mode, **open_kwargs)` through `atomic_path`: the stream writes a
    temporary file, which becomes `destination` when the body returns (the body may close the
    stream itself).
    """
    with atomic_path(destination, durable) as temporary:
        with open(temporary, mode, **open_kwargs) as stream:
            yield stream


def atomic_write_text(destination: PathLike, text: str) -> None:
    """`Path(destination).write_text(text, encoding="utf-8")` through `atomic_open`."""
    with atomic_open(destination, "w", encoding="utf-8") as stream:
        stream.write(text)


def atomic_torch_save(obj: Any, destination: PathLike) -> None:
    """`torch.save(obj, destination)` through `atomic_path`."""
    import torch

    with atomic_path(destination) as temporary:
        torch.save(obj, temporary)


class LocalFiles:
    """
    The file operations of `atomic_directory`, on this machine's file system. Another file
    system (Hadoop's, for `ner-spark`) passes an object with the same methods.
    """

    sibling = staticmethod(partial_path)
    exists = staticmethod(os.path.lexists)

    @staticmethod
    def rename(source, target) -> None:
        os.rename(source, target)
        # Best effort, as in `atomic_paths`: the rename itself survives a crash of the machine.
        _fsync_directory(Path(target).parent)

    @staticmethod
    def remove(path) -> None:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    @staticmethod
    def sync(path) -> None:
        """Flush every file and directory under `path` to disk."""
        for directory, _, names in os.walk(path):
            for name in names:
                _fsync(os.path.join(directory, name))
            _fsync_directory(directory)


@contextlib.contextmanager
def atomic_directory(destination, files=LocalFiles) -> Iterator[Any]:
    """
    Yields a temporary path beside the directory `destination` (`NAME.partial-PID-RANDOM`, not
    yet created: the body creates it, as Spark's writers want) for the body to fill. When the
    body returns, its files are flushed to disk and the directory takes `destination`'s place:
    renamed onto it when there is none; else the old directory is renamed aside (to another
    temporary name), the new one renamed in, and the old one deleted. When the body raises, the
    temporary directory is deleted and `destination` is left as it was.

    A reader sees the old directory or the whole new one. Between the two renames of a swap
    there is none; a crash there leaves the old one, whole, under its temporary name. Whatever
    the old directory held is replaced: give a directory of its own.

    # Parameters

    destination : `PathLike` or `str`
        The directory (a URL for `files` other than local ones).
    files : optional (default = `LocalFiles`)
        The file operations: `sibling(path)` (a fresh temporary name), `exists(path)`,
        `rename(source, target)` (raises on failure), `remove(path)` (a tree, or nothing) and
        `sync(path)` (flush a tree to disk; may do nothing where the store is durable itself).
    """
    temporary = files.sibling(destination)
    try:
        yield temporary
        files.sync(temporary)
        aside = files.sibling(destination) if files.exists(destination) else None
        if aside is not None:
            files.rename(destination, aside)
        try:
            files.rename(temporary, destination)
        except BaseException:
            if aside is not None:
                files.rename(aside, destination)
            raise
    except BaseException:
        files.remove(temporary)
        raise
    if aside is not None:
        files.remove(aside)


def remove_partials(directory: PathLike) -> List[Path]:
    """
    Delete the temporary files and directories that this module's writers left under
    `directory` (a process killed outright while writing), and return them. Only for a
    directory that no other process is writing in (a run being recovered).
    """
    found = [path for path in Path(directory).rglob("*.partial-*") if _PARTIAL.search(path.name)]
    for path in found:
        LocalFiles.remove(path)
    return found


def _fsync(path: PathLike, flags: int = 0) -> None:
    descriptor = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(path: PathLike) -> None:
    # Best effort: some file systems cannot sync a directory.
    with contextlib.suppress(OSError):
        _fsync(path, os.O_DIRECTORY if hasattr(os, "O_DIRECTORY") else 0)
