"""
`allennlp train` writes `model.tar.gz` in place with `tarfile`; a run killed while archiving
leaves a truncated archive exactly where a finished one is expected. The plugin swaps in
`atomic_archive_model`, which writes the archive under a temporary name next to its destination
and renames it into place (atomic on POSIX), so `model.tar.gz` is either whole or absent.
"""
import os
from typing import List, Optional

from allennlp.commands import train as _train_command
from allennlp.models import archival

_stock_archive_model = archival.archive_model


def atomic_archive_model(
    serialization_dir,
    weights: str = "best.th",
    archive_path=None,
    include_in_archive: Optional[List[str]] = None,
) -> str:
    """`allennlp.models.archival.archive_model`, writing to a temporary file then renaming."""
    final = archive_path if archive_path is not None else os.path.join(serialization_dir, "model.tar.gz")
    if os.path.isdir(final):
        final = os.path.join(final, "model.tar.gz")
    partial = f"{final}.partial-{os.getpid()}"
    try:
        _stock_archive_model(serialization_dir, weights, archive_path=partial, include_in_archive=include_in_archive)
        os.replace(partial, final)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return str(final)


def install() -> None:
    """Make `allennlp train` archive through `atomic_archive_model`."""
    _train_command.archive_model = atomic_archive_model
