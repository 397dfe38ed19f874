import torch
from allennlp.training.learning_rate_schedulers import LearningRateScheduler


@LearningRateScheduler.register("inverse_time_decay")
class InverseTimeDecay(LearningRateScheduler):
    """
    Spark NLP NerDL's learning-rate decay: in epoch `e` (counting from 0) the learning rate is
    `lr / (1 + po * e)`, where `lr` is the optimizer's initial learning rate and `po` the decay
    coefficient (`setPo` in Spark NLP, default 0.005 there). Steps once per epoch.

    Registered as a `LearningRateScheduler` with name "inverse_time_decay".

    # Parameters

    optimizer : `torch.optim.Optimizer`
        Supplied by the trainer; not a config key.
    po : `float`, optional (default = `0.005`)
        The decay coefficient. `0` keeps the learning rate constant.
    last_epoch : `int`, optional (default = `-1`)
        The last finished epoch, for resuming.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, po: float = 0.005, last_epoch: int = -1) -> None:
        if po < 0:
            raise ValueError(f"po must be >= 0, got {po}")
        self.po = po
        super().__init__(optimizer, last_epoch)

    def get_values(self):
        # `step()` runs at the end of an epoch, after incrementing `last_epoch` to the epoch just
        # finished, so the rate set here is for the epoch after it.
        next_epoch = self.last_epoch + 1
        return [base / (1.0 + self.po * next_epoch) for base in self.base_values]
