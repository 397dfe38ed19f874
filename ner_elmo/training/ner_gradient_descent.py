"""
allennlp's `GradientDescentTrainer` writes `best.th` with `torch.save` straight to its final
name: with a moving average of the weights (the configs'), or when no checkpoint was saved that
epoch, it saves the model's state there; a sharded run consolidates its shards into it. A full
disk or a kill while it writes leaves a truncated `best.th` in place of the previous best
weights, and the archive is made from it.
"""
import glob
import os

from allennlp.training.gradient_descent_trainer import GradientDescentTrainer
from allennlp.training.trainer import Trainer

from ner_elmo.common.atomic_write import atomic_torch_save


@Trainer.register("ner_gradient_descent", constructor="from_partial_objects")
class NerGradientDescentTrainer(GradientDescentTrainer):
    """
    allennlp's `gradient_descent` trainer (same parameters and behaviour) whose `best.th` is
    whole or absent: every state it saves itself goes under a temporary name and is renamed into
    place (`ner_elmo.common.atomic_write`), so a failed write leaves the previous best weights.
    Checkpoints are the checkpointer's: use `ner_atomic` for them.

    Without a moving average, an epoch that saved a checkpoint gets `best.th` as allennlp makes
    it: the old file is deleted and the checkpoint's model state hard-linked in its place (whole,
    as `ner_atomic` wrote it; a kill between the two steps leaves no `best.th`, never half of
    one), or copied in place where the file system has no hard links.

    Registered as a `Trainer` with name "ner_gradient_descent".
    """

    def _save_model_state(self, path: str) -> None:
        model = self._ddp_wrapped_model if self._ddp_wrapped_model is not None else self.model
        atomic_torch_save(model.state_dict(), path)

    def _finalize_best_model_state(self) -> None:
        # allennlp's, with the consolidated file written atomically (sharded models only).
        model = self._ddp_wrapped_model
        if self._serialization_dir and model is not None and model.is_sharded:
            shards = glob.glob(os.path.join(self._serialization_dir, "best_w*.th"))
            self._best_model_filename = os.path.join(self._serialization_dir, "best.th")
            atomic_torch_save(model.consolidate_sharded_state(shards), self._best_model_filename)
