"""
allennlp's `Checkpointer` writes each checkpoint's two files with `torch.save` straight to their
final names, the model state first. A run killed while it writes leaves a truncated file, or a
model state without its training state, and `allennlp train --recover` then fails on that
newest checkpoint instead of resuming from it.
"""
from typing import Optional

import torch
from allennlp.training.checkpointer import Checkpointer, TrainerCheckpoint

from ner_elmo.common.atomic_write import atomic_torch_save


@Checkpointer.register("ner_atomic")
class NerAtomicCheckpointer(Checkpointer):
    """
    allennlp's `Checkpointer` (same parameters, file names and pruning) whose checkpoints are
    whole or absent: each file is written under a temporary name and renamed into place, the
    training state before the model state. allennlp finds checkpoints by their model state file,
    so a checkpoint is never found before both files are complete, and a kill at any moment
    leaves the previous checkpoint as the newest. `--recover` reads the checkpoint as data only
    (`weights_only=True`): a checkpoint file that carries pickled code is refused.

    Registered as a `Checkpointer` with name "ner_atomic".
    """

    def save_checkpoint(self, trainer) -> None:
        state = trainer.get_checkpoint_state() if self._serialization_dir is not None else None
        if state is not None:
            epochs = state.trainer_state["epochs_completed"]
            batches = state.trainer_state["batches_in_epoch_completed"]
            atomic_torch_save(state.trainer_state, self._training_state_path(epochs, batches))
            atomic_torch_save(state.model_state, self._model_state_path(epochs, batches))
        # The files now exist, so allennlp's own save writes nothing and only does its
        # bookkeeping and pruning.
        super().save_checkpoint(trainer)

    def load_checkpoint(self) -> Optional[TrainerCheckpoint]:
        # allennlp's, with weights_only stated rather than left to torch's default.
        latest = self.find_latest_checkpoint()
        if latest is None:
            return None
        model_path, training_state_path = latest
        model_state = torch.load(model_path, map_location="cpu", weights_only=True)
        training_state = torch.load(training_state_path, map_location="cpu", weights_only=True)
        return TrainerCheckpoint(model_state, training_state)
