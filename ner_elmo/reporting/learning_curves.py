"""
Learning curves from the `metrics_epoch_N.json` files AllenNLP's trainer writes into the
serialization directory after each epoch: training and validation loss and entity F1 per epoch.
"""
import json
import re
from pathlib import Path
from typing import Any, Collection, Dict, List, NamedTuple, Optional, Sequence, Set, Union

from ner_elmo.reporting.figures import pyplot, save_png

#: Overall F1 metric names looked for when none is given, in order of preference.
F1_KEYS = ("f1-measure-overall", "conlleval-f1-overall")

_EPOCH_FILE = re.compile(r"^metrics_epoch_(\d+)\.json$")


def load_epoch_metrics(serialization_dir: Union[str, Path]) -> List[Dict[str, Any]]:
    """
    The contents of every `metrics_epoch_N.json` in `serialization_dir`, by increasing N
    (numerically: epoch 10 comes after epoch 9), each with `"epoch"` set to N.
    """
    serialization_dir = Path(serialization_dir)
    if not serialization_dir.is_dir():
        raise FileNotFoundError(f"{serialization_dir} is not a directory")
    numbered = []
    for path in serialization_dir.iterdir():
        match = _EPOCH_FILE.match(path.name)
        if match:
            numbered.append((int(match.group(1)), path))
    if not numbered:
        raise FileNotFoundError(
            f"no metrics_epoch_N.json files in {serialization_dir}: is it an AllenNLP "
            "serialization directory that finished at least one epoch?"
        )
    epochs = []
    for epoch, path in sorted(numbered):
        try:
            metrics = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        metrics["epoch"] = epoch
        epochs.append(metrics)
    return epochs


class LearningCurves(NamedTuple):
    """Per-epoch series; `None` where an epoch lacks the number (e.g. no validation run)."""

    epochs: List[int]
    training_loss: List[Optional[float]]
    validation_loss: List[Optional[float]]
    training_f1: List[Optional[float]]
    validation_f1: List[Optional[float]]
    f1_key: Optional[str]


def learning_curves(
    epoch_metrics: Sequence[Dict[str, Any]],
    f1_key: Optional[str] = None,
    validated_epochs: Optional[Collection[int]] = None,
) -> LearningCurves:
    """
    The series of `epoch_metrics` (as from `load_epoch_metrics`). `f1_key` is the metric name
    without its `training_`/`validation_` prefix; by default the first of `F1_KEYS` that any
    epoch reports (allennlp's span F1, then conlleval's), or none.

    The trainer's `metrics_epoch_N.json` of an epoch without validation repeats the last
    validation numbers; given `validated_epochs`, other epochs get `None` for validation.
    """
    if f1_key is None:
        present = {key.split("_", 1)[1] for m in epoch_metrics for key in m if "_" in key}
        f1_key = next((key for key in F1_KEYS if key in present), None)

    def series(name: Optional[str]) -> List[Optional[float]]:
        if name is None:
            return [None] * len(epoch_metrics)
        return [
            None
            if name.startswith("validation_")
            and validated_epochs is not None
            and int(m["epoch"]) not in validated_epochs
            else _number(m.get(name))
            for m in epoch_metrics
        ]

    return LearningCurves(
        epochs=[int(m["epoch"]) for m in epoch_metrics],
        training_loss=series("training_loss"),
        validation_loss=series("validation_loss"),
        training_f1=series(f"training_{f1_key}" if f1_key else None),
        validation_f1=series(f"validation_{f1_key}" if f1_key else None),
        f1_key=f1_key,
    )


def plot_learning_curves(
    curves: LearningCurves, output_path: Union[str, Path], title: Optional[str] = None
) -> Path:
    """A PNG with two panels, loss and F1 against epoch, training and validation in each."""
    figure, (loss_axes, f1_axes) = pyplot().subplots(1, 2, figsize=(10, 4))
    for axes, pairs, ylabel in (
        (loss_axes, (("training", curves.training_loss), ("validation", curves.validation_loss)),
         "loss"),
        (f1_axes, (("training", curves.training_f1), ("validation", curves.validation_f1)),
         curves.f1_key or "F1 (not reported)"),
    ):
        for label, values in pairs:
            points = [(e, v) for e, v in zip(curves.epochs, values) if v is not None]
            if points:
                xs, ys = zip(*points)
                axes.plot(xs, ys, marker="o", label=label)
        axes.set_xlabel("epoch")
        axes.set_ylabel(ylabel)
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    # Integer epochs on the x axis.
    from matplotlib.ticker import MaxNLocator

    for axes in (loss_axes, f1_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        figure.suptitle(title)
    return save_png(figure, output_path)


def validated_epochs_of(serialization_dir: Union[str, Path]) -> Optional[Set[int]]:
    """
    The epochs that ran validation, from the `epoch_report.jsonl` the `ner_epoch_report`
    callback writes; `None` (unknown) without that file.
    """
    path = Path(serialization_dir) / "epoch_report.jsonl"
    if not path.exists():
        return None
    return {
        int(json.loads(line)["epoch"]) for line in path.read_text().splitlines() if line.strip()
    }


def serialization_dir_curves(
    serialization_dir: Union[str, Path], f1_key: Optional[str] = None
) -> LearningCurves:
    """`learning_curves` of a serialization directory, validated epochs as `validated_epochs_of`."""
    return learning_curves(
        load_epoch_metrics(serialization_dir),
        f1_key=f1_key,
        validated_epochs=validated_epochs_of(serialization_dir),
    )


def plot_serialization_dir(
    serialization_dir: Union[str, Path],
    output_path: Optional[Union[str, Path]] = None,
    f1_key: Optional[str] = None,
) -> Path:
    """
    `serialization_dir_curves` drawn by `plot_learning_curves` to `output_path`, by default
    `serialization_dir/learning_curves.png`.
    """
    serialization_dir = Path(serialization_dir)
    curves = serialization_dir_curves(serialization_dir, f1_key)
    if output_path is None:
        output_path = serialization_dir / "learning_curves.png"
    return plot_learning_curves(curves, output_path, title=serialization_dir.name)


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
