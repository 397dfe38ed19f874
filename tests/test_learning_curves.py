"""Learning curves from metrics_epoch_N.json files, and the `ner-curves` command."""
import argparse
import json
from pathlib import Path

import pytest

from ner_elmo.reporting.learning_curves import (
    learning_curves,
    load_epoch_metrics,
    plot_learning_curves,
    serialization_dir_curves,
)


def write_epochs(directory: Path, epochs) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for epoch, metrics in epochs.items():
        (directory / f"metrics_epoch_{epoch}.json").write_text(json.dumps(metrics))
    return directory


def epoch_metrics(epoch: int, validate: bool = True) -> dict:
    metrics = {
        "epoch": epoch,
        "training_loss": 10.0 - epoch,
        "training_f1-measure-overall": 0.05 * epoch,
        "best_validation_f1-measure-overall": 0.99,  # must not be taken for the epoch's F1
    }
    if validate:
        metrics["validation_loss"] = 12.0 - epoch
        metrics["validation_f1-measure-overall"] = 0.04 * epoch
    return metrics


def png_is_not_blank(path: Path) -> bool:
    import matplotlib.image

    pixels = matplotlib.image.imread(str(path))
    return pixels.shape[0] > 100 and pixels.shape[1] > 100 and float(pixels.std()) > 0.01


def test_epochs_are_read_in_numeric_order(tmp_path):
    write_epochs(tmp_path, {e: epoch_metrics(e) for e in (10, 2, 0, 1, 9)})
    (tmp_path / "metrics.json").write_text("{}")  # the final metrics file is not an epoch
    (tmp_path / "metrics_epoch_x.json").write_text("{}")
    loaded = load_epoch_metrics(tmp_path)
    assert [m["epoch"] for m in loaded] == [0, 1, 2, 9, 10]
    curves = learning_curves(loaded)
    assert curves.epochs == [0, 1, 2, 9, 10]
    assert curves.training_loss == [10.0, 9.0, 8.0, 1.0, 0.0]
    assert curves.validation_loss == [12.0, 11.0, 10.0, 3.0, 2.0]
    assert curves.f1_key == "f1-measure-overall"
    assert curves.validation_f1 == pytest.approx([0.0, 0.04, 0.08, 0.36, 0.40])
    assert curves.training_f1 == pytest.approx([0.0, 0.05, 0.10, 0.45, 0.50])


def test_conlleval_f1_is_used_when_span_f1_is_absent_and_gaps_stay_gaps(tmp_path):
    epochs = {
        0: {"training_loss": 3.0, "validation_loss": 4.0, "validation_conlleval-f1-overall": 0.2},
        1: {"training_loss": 2.0},  # an epoch without validation
        2: {"training_loss": 1.0, "validation_loss": 2.5, "validation_conlleval-f1-overall": 0.6},
    }
    curves = learning_curves(load_epoch_metrics(write_epochs(tmp_path, epochs)))
    assert curves.f1_key == "conlleval-f1-overall"
    assert curves.validation_loss == [4.0, None, 2.5]
    assert curves.validation_f1 == [0.2, None, 0.6]
    assert curves.training_f1 == [None, None, None]
    output = plot_learning_curves(curves, tmp_path / "curves.png")
    assert png_is_not_blank(output)


def test_a_chosen_f1_metric_wins(tmp_path):
    epochs = {0: {**epoch_metrics(0), "validation_conlleval-f1-overall": 0.7}}
    curves = learning_curves(load_epoch_metrics(write_epochs(tmp_path, epochs)),
                             f1_key="conlleval-f1-overall")
    assert curves.validation_f1 == [0.7]


def test_stale_validation_numbers_of_unvalidated_epochs_are_dropped(tmp_path):
    # The trainer repeats epoch 0's validation numbers in epoch 1's file when epoch 1 does not
    # validate; ner_epoch_report's log lists the epochs that did.
    stale = {**epoch_metrics(1, validate=False), "validation_loss": 12.0,
             "validation_f1-measure-overall": 0.0}
    run = write_epochs(tmp_path, {0: epoch_metrics(0), 1: stale, 2: epoch_metrics(2)})
    assert serialization_dir_curves(run).validation_loss == [12.0, 12.0, 10.0]
    (run / "epoch_report.jsonl").write_text('{"epoch": 0}\n{"epoch": 2}\n')
    curves = serialization_dir_curves(run)
    assert curves.validation_loss == [12.0, None, 10.0]
    assert curves.validation_f1 == pytest.approx([0.0, None, 0.08])
    assert curves.training_loss == [10.0, 9.0, 8.0]


def test_directory_without_epoch_files_is_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics_epoch_N.json files in"):
        load_epoch_metrics(tmp_path)
    (tmp_path / "metrics_epoch_0.json").write_text("{not json")
    with pytest.raises(ValueError, match="metrics_epoch_0.json: not valid JSON"):
        load_epoch_metrics(tmp_path)


def test_ner_curves_command_writes_the_png(tmp_path, capsys):
    from ner_elmo.commands.ner_curves import NerCurves

    run = write_epochs(tmp_path / "run", {e: epoch_metrics(e) for e in range(4)})
    parser = argparse.ArgumentParser()
    NerCurves().add_subparser(parser.add_subparsers())

    args = parser.parse_args(["ner-curves", str(run)])
    assert args.func(args) == run / "learning_curves.png"
    assert png_is_not_blank(run / "learning_curves.png")

    args = parser.parse_args(["ner-curves", str(run), "--output", str(tmp_path / "c.png")])
    args.func(args)
    assert png_is_not_blank(tmp_path / "c.png")
    out = capsys.readouterr().out
    assert "4 epochs plotted to" in out
    assert "last epoch 3: validation loss 9.0000, validation f1-measure-overall 0.1200" in out
