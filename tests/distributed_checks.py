"""
Callbacks for the distributed-training test. Its workers are spawned processes, so they import
this module by name (`include_package`), and they report through files.
"""
import hashlib
import io
import json
from pathlib import Path

import torch
import torch.distributed as dist
from allennlp.common.util import is_distributed
from allennlp.training.callbacks.callback import TrainerCallback

from ner_elmo.training.callbacks.rng_state import capture_rng_state


def digest(value) -> str:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return hashlib.sha1(buffer.getvalue()).hexdigest()


@TrainerCallback.register("test_worker_record")
class WorkerRecord(TrainerCallback):
    """
    After each epoch, every worker appends to `worker_record_w{rank}.jsonl` in `record_dir`:
    whether the run is a `"first"` one or `"resumed"` from a checkpoint, the training sentences
    it saw, the token and gold-chunk counts of the validation conlleval
    result it computed (summed over workers or not), and digests of its generators' states and
    of its weights.
    """

    def __init__(self, serialization_dir: str, record_dir: str) -> None:
        super().__init__(serialization_dir)
        self.record_dir = Path(record_dir)
        self.label = "first"
        self.sentences = 0
        self.last_result = None

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        # allennlp calls on_start after restoring a checkpoint
        self.label = "resumed" if trainer._start_after_epochs_completed else "first"
        metric = trainer.model._conlleval
        get_result = metric.get_result

        def recording_get_result(reset: bool = False):
            self.last_result = get_result(reset)
            return self.last_result

        metric.get_result = recording_get_result

    def on_batch(self, trainer, batch_inputs, batch_outputs, batch_metrics, epoch, batch_number,
                 is_training, is_primary=True, batch_grad_norm=None, **kwargs) -> None:
        if is_training:
            self.sentences += sum(len(batch["tags"]) for batch in batch_inputs)

    def on_epoch(self, trainer, metrics, epoch, is_primary=True, **kwargs) -> None:
        rank = dist.get_rank() if is_distributed() else 0
        counts = self.last_result.counts  # the validation's: it ran last
        record = {
            "label": self.label,
            "epoch": epoch,
            "train_sentences": self.sentences,
            "validation_tokens": counts.tokens,
            "validation_gold_chunks": counts.found_correct,
            "rng": digest(capture_rng_state()),
            "weights": digest(trainer.model.state_dict()),
        }
        self.sentences = 0
        with open(self.record_dir / f"worker_record_w{rank}.jsonl", "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")


@TrainerCallback.register("test_crash_every_worker_after_epoch")
class CrashEveryWorkerAfterEpoch(TrainerCallback):
    """
    Every worker raises in `on_epoch` of `epoch`, before that epoch's checkpoint, in a run
    that starts while `flag_file` is absent (the run creates it); a later run does not crash.
    """

    def __init__(self, serialization_dir: str, epoch: int, flag_file: str) -> None:
        super().__init__(serialization_dir)
        self.epoch = epoch
        self.flag_file = Path(flag_file)
        self.armed = False

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        self.armed = not self.flag_file.exists()
        if is_distributed():
            dist.barrier()  # every worker has looked before anyone creates the flag
        self.flag_file.touch()

    def on_epoch(self, trainer, metrics, epoch, is_primary=True, **kwargs) -> None:
        if self.armed and epoch == self.epoch:
            raise RuntimeError("simulated crash")
