"""
Files that are whole or absent: write under a temporary name beside the destination, then rename
the finished file onto it (`os.replace`, atomic on POSIX), so a reader sees the old file or the
whole new one, never half of one.

The one implementation of the idea in the package: checkpoints (`ner_atomic`), model archives
(`ner_atomic_archive`), `ner-predict`'s output file and the disk activation cache write through
`atomic_path` or `atomic_open`.
"""
import contextlib
import os
import uuid
from pathlib import Path
from typing import IO, Any, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


def partial_path(destination: PathLike) -> Path:
    """
    A fresh temporary name for `destination`, in its directory: `NAME.partial-PID-RANDOM`. It
    ends in no file type, so nothing that looks for `*.th`, `*.npy` or `model.tar.gz` finds it.
    """
    destination = Path(destination)
    return destination.with_name(f"{destination.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_path(destination: PathLike, durable: bool = True) -> Iterator[Path]:
    """
    Yields a temporary path beside `destination` for the body to write (for writers that take a
    path: `torch.save`, `tarfile`). When the body returns, the file is renamed onto
    `destination`; when it raises (`KeyboardInterrupt` included), the file is removed and
    `destination` is left as it was. A process killed outright (SIGKILL) can leave the
    temporary file behind, never a partial `destination`.

    `durable` also flushes the file to disk before the rename and the directory after it, so
    the new file survives a crash of the machine, not only of the process. Leave it on except
    for caches, whose lost entries are only misses (it costs milliseconds per file).
    """
    destination = Path(destination)
    temporary = partial_path(destination)
    try:
        yield temporary
        if durable:
            _fsync(temporary)
        os.replace(temporary, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    if durable:
        # Best effort: some file systems cannot sync a directory.
        with contextlib.suppress(OSError):
            _fsync(destination.parent, os.O_DIRECTORY if hasattr(os, "O_DIRECTORY") else 0)


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


def _fsync(path: PathLike, flags: int = 0) -> None:
    descriptor = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
