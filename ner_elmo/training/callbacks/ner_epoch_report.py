import csv
import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, TYPE_CHECKING

from allennlp.training.callbacks.callback import TrainerCallback

from ner_elmo.reporting.learning_curves import plot_serialization_dir
from ner_elmo.reporting.type_metrics import OVERALL, format_type_table, type_metrics

if TYPE_CHECKING:
    from allennlp.training.gradient_descent_trainer import GradientDescentTrainer

logger = logging.getLogger(__name__)

CSV_COLUMNS = [
    "epoch", "scorer", "type", "precision", "recall", "f1", "training_loss", "validation_loss"
]


@TrainerCallback.register("ner_epoch_report")
class NerEpochReportCallback(TrainerCallback):
    """
    An extended evaluation log: after each epoch that ran validation, the per-entity-type
    validation precision, recall and F1 the trainer computed are appended to `epoch_report.csv`
    (one row per type and an `overall` row, with the epoch's training and validation loss) and
    `epoch_report.jsonl` (one record per epoch) in the serialization directory, and logged as a
    small table. When training ends, the learning curves of all epochs so far are drawn to
    `learning_curves.png`.

    With `allennlp train --recover`, epochs replayed after the last checkpoint replace their
    earlier rows instead of repeating them, so each file holds each epoch once.

    Registered as a `TrainerCallback` with name "ner_epoch_report".

    # Parameters

    serialization_dir : `str`
        Given by the trainer.
    scorer : `str`, optional (default = `"auto"`)
        Which metrics to report: `"conlleval"` (`conlleval-precision-PER`...), `"span_f1"`
        (allennlp's `precision-PER`..., per type only with the model's `verbose_metrics: true`)
        or `"auto"`: conlleval when the model reports it, else span F1.
    plot : `bool`, optional (default = `True`)
        Draw `learning_curves.png` at the end of training.
    """

    def __init__(self, serialization_dir: str, scorer: str = "auto", plot: bool = True) -> None:
        super().__init__(serialization_dir)
        if scorer not in ("auto", "conlleval", "span_f1"):
            raise ValueError(f'scorer must be "auto", "conlleval" or "span_f1", got {scorer!r}')
        self.scorer = scorer
        self.plot = plot
        self.csv_path = Path(serialization_dir) / "epoch_report.csv"
        self.jsonl_path = Path(serialization_dir) / "epoch_report.jsonl"
        self._validated_epoch: Optional[int] = None

    def on_batch(
        self,
        trainer: "GradientDescentTrainer",
        batch_inputs: List[Any],
        batch_outputs: List[Dict[str, Any]],
        batch_metrics: Dict[str, Any],
        epoch: int,
        batch_number: int,
        is_training: bool,
        is_primary: bool = True,
        batch_grad_norm: Optional[float] = None,
        **kwargs,
    ) -> None:
        if not is_training:
            self._validated_epoch = epoch

    def on_epoch(
        self,
        trainer: "GradientDescentTrainer",
        metrics: Dict[str, Any],
        epoch: int,
        is_primary: bool = True,
        **kwargs,
    ) -> None:
        # The trainer's metrics keep the last validation numbers on epochs it does not
        # validate: report only epochs that ran validation batches.
        if not is_primary or self._validated_epoch != epoch:
            return
        record = epoch_record(metrics, epoch, self.scorer)
        if record is None:
            logger.warning(
                "ner_epoch_report: epoch %d has no validation precision/recall/F1 to report", epoch
            )
            return
        self._drop_epochs_from(epoch)
        self._append(record)
        logger.info(
            "Validation by entity type after epoch %d (%s):\n%s",
            epoch,
            record["scorer"],
            "\n".join(format_type_table({**record["types"], OVERALL: record[OVERALL]})),
        )

    def on_end(
        self,
        trainer: "GradientDescentTrainer",
        metrics: Dict[str, Any] = None,
        epoch: int = None,
        is_primary: bool = True,
        **kwargs,
    ) -> None:
        if not (is_primary and self.plot):
            return
        # on_end also runs when training failed: a missing plot must not hide that error.
        try:
            path = plot_serialization_dir(self.serialization_dir)
            logger.info("Learning curves written to %s", path)
        except Exception as error:  # noqa: BLE001
            logger.warning("ner_epoch_report: no learning curves (%s)", error)

    def _drop_epochs_from(self, epoch: int) -> None:
        """Remove rows of `epoch` and later ones: left by a run that was recovered."""
        if self.jsonl_path.exists():
            lines = self.jsonl_path.read_text(encoding="utf-8").splitlines()
            kept = [line for line in lines if line.strip() and json.loads(line)["epoch"] < epoch]
            if len(kept) != len(lines):
                self.jsonl_path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        if self.csv_path.exists():
            with self.csv_path.open(newline="", encoding="utf-8") as file:
                rows = list(csv.DictReader(file))
            kept_rows = [row for row in rows if int(row["epoch"]) < epoch]
            if len(kept_rows) != len(rows):
                with self.csv_path.open("w", newline="", encoding="utf-8") as file:
                    writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
                    writer.writeheader()
                    writer.writerows(kept_rows)

    def _append(self, record: Dict[str, Any]) -> None:
        with self.jsonl_path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
        new_file = not self.csv_path.exists()
        with self.csv_path.open("a", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
            if new_file:
                writer.writeheader()
            writer.writerows(csv_rows(record))


def epoch_record(metrics: Dict[str, Any], epoch: int, scorer: str = "auto") -> Optional[dict]:
    """
    The `epoch_report.jsonl` record of one epoch's trainer metrics: `epoch`, `scorer`,
    `training_loss`, `validation_loss`, `overall` and `types` (`{type: {precision, recall,
    f1}}`); `None` when the metrics hold no validation precision/recall/F1.
    """
    used, table = type_metrics(metrics, prefix="validation_", scorer=scorer)
    if not table:
        return None
    empty = {"precision": None, "recall": None, "f1": None}
    return {
        "epoch": epoch,
        "scorer": used,
        "training_loss": metrics.get("training_loss"),
        "validation_loss": metrics.get("validation_loss"),
        OVERALL: table.get(OVERALL, empty),
        "types": {t: row for t, row in table.items() if t != OVERALL},
    }


def csv_rows(record: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The `epoch_report.csv` rows of a record: one per type, then `overall`."""
    shared = {k: record[k] for k in ("epoch", "scorer", "training_loss", "validation_loss")}
    typed = list(record["types"].items()) + [(OVERALL, record[OVERALL])]
    return [{**shared, "type": t, **row} for t, row in typed]
