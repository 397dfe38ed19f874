import random
from typing import Any, Dict, Iterator, List, Optional

import numpy
import torch
import torch.distributed as dist
from allennlp.common.util import is_distributed
from allennlp.data.data_loaders.data_loader import DataLoader, TensorDict
from allennlp.training.callbacks import TrainerCallback


def capture_rng_state() -> Dict[str, Any]:
    """Python's, NumPy's and torch's (and CUDA's) generator states, as tensors and lists (which
    torch's weights-only loading accepts)."""
    version, python_state, gauss = random.getstate()
    name, keys, position, has_gauss, cached_gauss = numpy.random.get_state()
    state = {
        "python": [version, list(python_state), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(numpy.int64)), position, has_gauss, cached_gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Sets the generators to a state from `capture_rng_state`."""
    version, python_state, gauss = state["python"]
    random.setstate((version, tuple(python_state), gauss))
    name, keys, position, has_gauss, cached_gauss = state["numpy"]
    numpy.random.set_state((name, keys.numpy().astype(numpy.uint32), position, has_gauss, cached_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@TrainerCallback.register("rng_state")
class RngStateCallback(TrainerCallback):
    """
    Makes `allennlp train --recover` after a kill continue exactly as the run that was never
    interrupted: same batch order, same dropout masks, same final metrics.

    AllenNLP checkpoints the model, optimizer and schedulers but not the random generators, and
    on `--recover` it replays every finished epoch through the data loader (skipping the batches)
    to bring the generators back to where they were. That replay only repeats the data loader's
    draws: the dropout draws of the finished epochs are missing, so the resumed run's torch
    generator is off, and so are its dropout masks. This callback stores Python's, NumPy's and
    torch's generator states in every checkpoint, and on recovery it serves the finished epochs
    from a stand-in that yields placeholder batches (the trainer only counts them; this also saves
    re-reading and re-batching the data), then restores the checkpointed state just before the
    first epoch that really runs draws its batch order. A checkpoint taken mid-epoch
    (`save_every_num_batches`) restores the state of that epoch's start, lets the data loader
    draw the same order, and restores the checkpointed state before the first batch that runs.

    In distributed training only the primary worker writes checkpoints, but every worker has
    generators of its own (its own shard of batches, its own dropout draws). So, just before each
    checkpoint (at the end of an epoch, and after each batch when `save_every_num_batches` is
    set), the workers gather their states, the checkpoint holds all of them, and on recovery each
    worker restores its own (by global rank; a worker beyond the checkpoint's count takes the
    primary's).

    Registered as a `TrainerCallback` with name "rng_state".
    """

    def __init__(self, serialization_dir: str) -> None:
        super().__init__(serialization_dir)
        self.trainer = None
        # The generators' state when the current epoch's batch order was drawn.
        self._epoch_start_state: Optional[Dict[str, Any]] = None
        # The checkpointed states, until training resumes.
        self._resume_from: Optional[Dict[str, Any]] = None
        # In distributed training: every worker's states, gathered just before a checkpoint.
        self._worker_states: Optional[List[Dict[str, Any]]] = None

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        self.trainer = trainer
        if not isinstance(trainer.data_loader, _RngAlignedDataLoader):
            trainer.data_loader = _RngAlignedDataLoader(trainer.data_loader, self)

    def on_batch(self, trainer, batch_inputs, batch_outputs, batch_metrics, epoch, batch_number,
                 is_training, is_primary: bool = True, batch_grad_norm=None, **kwargs) -> None:
        checkpointer = trainer._checkpointer
        if is_training and checkpointer is not None and checkpointer._save_every_num_batches:
            self._gather_worker_states()  # a mid-epoch checkpoint may follow this batch

    def on_epoch(self, trainer, metrics, epoch, is_primary: bool = True, **kwargs) -> None:
        self._gather_worker_states()  # the epoch's checkpoint follows

    def _own_state(self) -> Dict[str, Any]:
        return {"current": capture_rng_state(), "epoch_start": self._epoch_start_state}

    def _gather_worker_states(self) -> None:
        # Every worker calls the hooks above at the same points, so the collective matches up.
        if is_distributed():
            states: List[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(states, self._own_state())
            self._worker_states = states

    def state_dict(self) -> Dict[str, Any]:
        state = self._own_state()
        if self._worker_states is not None:
            state["workers"] = self._worker_states
        return state

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if not state_dict:  # a checkpoint written without this callback
            return
        if "current" not in state_dict:  # written by the first version: the state alone
            state_dict = {"current": state_dict, "epoch_start": None}
        workers = state_dict.get("workers")
        if workers and is_distributed() and dist.get_rank() < len(workers):
            state_dict = workers[dist.get_rank()]
        self._resume_from = state_dict

    def _iterate(self, data_loader: DataLoader) -> Iterator[TensorDict]:
        trainer = self.trainer
        if trainer._epochs_completed < trainer._start_after_epochs_completed:
            # An epoch the checkpoint already holds: the trainer skips its batches unseen.
            yield from (None for _ in range(len(data_loader)))  # type: ignore[misc]
            return
        resume, self._resume_from = self._resume_from, None
        skipped_batches = 0
        if resume is not None:
            skipped_batches = trainer._start_after_batches_in_epoch_completed * trainer._num_gradient_accumulation_steps
            if skipped_batches == 0:
                restore_rng_state(resume["current"])
            elif resume["epoch_start"] is not None:
                restore_rng_state(resume["epoch_start"])
        self._epoch_start_state = capture_rng_state()
        for index, batch in enumerate(data_loader):
            if resume is not None and skipped_batches and index == skipped_batches:
                restore_rng_state(resume["current"])
            yield batch


class _RngAlignedDataLoader:
    """The trainer's data loader, iterated through `RngStateCallback` (everything else passes
    through to the wrapped loader)."""

    def __init__(self, data_loader: DataLoader, callback: RngStateCallback) -> None:
        self._data_loader = data_loader
        self._callback = callback

    def __len__(self) -> int:
        return len(self._data_loader)

    def __iter__(self) -> Iterator[TensorDict]:
        return self._callback._iterate(self._data_loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data_loader, name)
