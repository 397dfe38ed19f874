import random
from typing import Any, Dict

import numpy
import torch
from allennlp.training.callbacks import TrainerCallback


@TrainerCallback.register("rng_state")
class RngStateCallback(TrainerCallback):
    """
    Saves the random number generators' state in every checkpoint and restores it on
    `allennlp train --recover`, so a run killed mid-epoch and resumed draws the same batch order
    and dropout masks as a run that was never interrupted, and ends with the same metrics.
    (AllenNLP checkpoints the model, optimizer and schedulers, but not Python's, NumPy's and
    torch's generators.) The states are stored as tensors and lists, which torch's weights-only
    loading accepts.

    Registered as a `TrainerCallback` with name "rng_state".
    """

    def state_dict(self) -> Dict[str, Any]:
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

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if not state_dict:  # a checkpoint written without this callback
            return
        version, python_state, gauss = state_dict["python"]
        random.setstate((version, tuple(python_state), gauss))
        name, keys, position, has_gauss, cached_gauss = state_dict["numpy"]
        numpy.random.set_state((name, keys.numpy().astype(numpy.uint32), position, has_gauss, cached_gauss))
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
