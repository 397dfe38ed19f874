"""
`allennlp train` writes `model.tar.gz` in place with `tarfile`, after training and when a run is
interrupted; a process killed while it archives leaves a truncated archive exactly where a
finished one is expected.

`atomic_archive_model` is allennlp's `archive_model` written through
`ner_elmo.common.atomic_write`, so the archive is whole or absent. allennlp offers no setting for
how `allennlp train` archives: it calls `allennlp.commands.train.archive_model`. So the
`ner_atomic_archive` callback, for a run whose configuration lists it and only while that run
trains, puts `atomic_archive_model` in that name's place, and puts allennlp's function back as
soon as the archive is written, or at the end of training when no archive step follows.
Importing `ner_elmo` changes nothing in allennlp.
"""
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from allennlp.commands import train as train_command
from allennlp.common.util import SigTermReceived, is_distributed
from allennlp.models import archival
from allennlp.training.callbacks.callback import TrainerCallback

from ner_elmo.common.atomic_write import atomic_path


def atomic_archive_model(
    serialization_dir,
    weights: str = "best.th",
    archive_path=None,
    include_in_archive: Optional[List[str]] = None,
) -> str:
    """`allennlp.models.archival.archive_model` (same arguments and result), whole or absent."""
    final = Path(archive_path) if archive_path is not None else Path(serialization_dir) / "model.tar.gz"
    if final.is_dir():
        final = final / "model.tar.gz"
    with atomic_path(final) as temporary:
        archival.archive_model(
            serialization_dir, weights, archive_path=temporary, include_in_archive=include_in_archive
        )
    return str(final)


# allennlp's function while `_archive_once` stands in for it.
_replaced: Optional[Any] = None


def _archive_once(*args, **kwargs) -> str:
    # What `allennlp train` calls during a run with the callback, with `archive_model`'s
    # arguments: one archive, then allennlp's function is back.
    _put_back()
    return atomic_archive_model(*args, **kwargs)


def _stand_in() -> None:
    global _replaced
    if train_command.archive_model is not _archive_once:
        _replaced = train_command.archive_model
        train_command.archive_model = _archive_once


def _put_back() -> None:
    global _replaced
    if train_command.archive_model is _archive_once:
        train_command.archive_model = _replaced
        _replaced = None


@TrainerCallback.register("ner_atomic_archive")
class NerAtomicArchiveCallback(TrainerCallback):
    """
    Makes the `model.tar.gz` that `allennlp train` writes for this run whole or absent: from the
    start of training until the archive is written, `allennlp.commands.train.archive_model` is
    `atomic_archive_model`; then allennlp's own function is back. When training ends without
    an archive step (an error, an interruption before any best weights, a distributed run,
    whose archive the launching process writes), it is put back at the end of training.
    Runs without the callback, and every other use of allennlp, archive as allennlp does.

    Registered as a `TrainerCallback` with name "ner_atomic_archive".

    # Parameters

    serialization_dir : `str`
        Given by the trainer.
    """

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        super().on_start(trainer, is_primary=is_primary, **kwargs)
        if is_primary:
            _stand_in()

    def on_end(
        self,
        trainer,
        metrics: Optional[Dict[str, Any]] = None,
        epoch: Optional[int] = None,
        is_primary: bool = True,
        **kwargs,
    ) -> None:
        if is_primary and not _archive_follows(trainer, metrics):
            _put_back()


def _archive_follows(trainer, metrics: Optional[Dict[str, Any]]) -> bool:
    # Mirrors allennlp.commands.train: train_model archives a finished run (in the process that
    # started the workers when training is distributed); _train_worker archives an interrupted
    # one (KeyboardInterrupt, SIGTERM) when it has best weights. Called while the trainer's
    # exception, if any, is propagating.
    if metrics is not None:
        return not is_distributed()
    error = sys.exc_info()[1]
    interrupted = isinstance(error, (KeyboardInterrupt, SigTermReceived))
    return interrupted and trainer.get_best_weights_path() is not None
