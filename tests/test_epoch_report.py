"""The "ner_epoch_report" trainer callback: per-type validation log, --recover, curves."""
import csv
import json
import logging
from pathlib import Path

import pytest

from ner_elmo.reporting.learning_curves import serialization_dir_curves
from ner_elmo.reporting.type_metrics import format_type_table, type_metrics
from ner_elmo.training.callbacks.ner_epoch_report import (
    CSV_COLUMNS,
    NerEpochReportCallback,
    epoch_record,
)
from tiny_corpus import TINY_SENTENCES, tiny_config, write_conll


def trainer_metrics(epoch: int, shift: float = 0.0) -> dict:
    """The shape of the trainer's `metrics` for crf_tagger with verbose_metrics and conlleval."""
    return {
        "epoch": epoch,
        "best_epoch": 0,
        "training_loss": 5.0 - epoch,
        "training_f1-measure-overall": 0.9,
        "validation_loss": 6.0 - epoch + shift,
        "validation_precision-PER": 0.5 + shift,
        "validation_recall-PER": 0.25,
        "validation_f1-measure-PER": 1 / 3,
        "validation_precision-B-ORG": 1.0,  # a hyphen in a type name stays in the name
        "validation_recall-B-ORG": 1.0,
        "validation_f1-measure-B-ORG": 1.0,
        "validation_precision-overall": 0.6,
        "validation_recall-overall": 0.4,
        "validation_f1-measure-overall": 0.48,
        "validation_conlleval-precision-PER": 0.7,
        "validation_conlleval-recall-PER": 0.7,
        "validation_conlleval-f1-PER": 0.7,
        "validation_conlleval-precision-overall": 0.7,
        "validation_conlleval-recall-overall": 0.7,
        "validation_conlleval-f1-overall": 0.7,
        "best_validation_f1-measure-overall": 0.48,
    }


def end_epoch(callback, metrics: dict, epoch: int, validated: bool = True, **kwargs) -> None:
    """What the trainer does: validation batches (if any), then `on_epoch`."""
    callback.on_batch(None, [], [], {}, epoch, 1, is_training=True)
    if validated:
        callback.on_batch(None, [], [], {}, epoch, 1, is_training=False)
    callback.on_epoch(None, metrics, epoch, **kwargs)


def read_csv(path: Path):
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def read_jsonl(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_type_metrics_reads_either_family():
    metrics = trainer_metrics(0)
    scorer, table = type_metrics(metrics, prefix="validation_")
    assert scorer == "conlleval"
    assert table == {
        "PER": {"precision": 0.7, "recall": 0.7, "f1": 0.7},
        "overall": {"precision": 0.7, "recall": 0.7, "f1": 0.7},
    }
    scorer, table = type_metrics(metrics, prefix="validation_", scorer="span_f1")
    assert scorer == "span_f1"
    assert list(table) == ["B-ORG", "PER", "overall"]
    assert table["PER"] == {"precision": 0.5, "recall": 0.25, "f1": pytest.approx(1 / 3)}
    assert type_metrics({"validation_loss": 1.0}, prefix="validation_") == (None, {})
    with pytest.raises(ValueError, match="scorer must be"):
        type_metrics(metrics, scorer="seqeval")


def test_type_table_is_in_percent():
    lines = format_type_table({"PER": {"precision": 0.5, "recall": None, "f1": 1 / 3}})
    assert lines == [
        "type  precision     recall         f1",
        "PER       50.00          -      33.33",
    ]


def test_epoch_record_and_rows():
    record = epoch_record(trainer_metrics(3), 3, scorer="span_f1")
    assert record["epoch"] == 3 and record["scorer"] == "span_f1"
    assert record["training_loss"] == 2.0 and record["validation_loss"] == 3.0
    assert record["overall"] == {"precision": 0.6, "recall": 0.4, "f1": 0.48}
    assert list(record["types"]) == ["B-ORG", "PER"]
    assert epoch_record({"validation_loss": 1.0}, 0) is None


def test_callback_appends_and_replaces_replayed_epochs(tmp_path, caplog):
    callback = NerEpochReportCallback(str(tmp_path), scorer="span_f1")
    with caplog.at_level(logging.INFO, logger="ner_elmo.training.callbacks.ner_epoch_report"):
        for epoch in (0, 1, 2):
            end_epoch(callback, trainer_metrics(epoch), epoch)
    assert "Validation by entity type after epoch 2 (span_f1)" in caplog.text
    assert "PER          50.00      25.00      33.33" in caplog.text

    rows = read_csv(tmp_path / "epoch_report.csv")
    assert list(rows[0]) == CSV_COLUMNS
    assert [(r["epoch"], r["type"]) for r in rows] == [
        (str(e), t) for e in (0, 1, 2) for t in ("B-ORG", "PER", "overall")
    ]
    assert rows[4]["precision"] == "0.5" and rows[4]["validation_loss"] == "5.0"

    # A recovered run restarts from the checkpoint after epoch 0 and replays epochs 1 and 2:
    # a fresh callback (as after a restart) replaces their rows instead of adding more.
    recovered = NerEpochReportCallback(str(tmp_path), scorer="span_f1")
    end_epoch(recovered, trainer_metrics(1, shift=0.25), 1)
    rows = read_csv(tmp_path / "epoch_report.csv")
    assert [(r["epoch"], r["type"]) for r in rows] == [
        (str(e), t) for e in (0, 1) for t in ("B-ORG", "PER", "overall")
    ]
    assert rows[4]["precision"] == "0.75" and rows[4]["validation_loss"] == "5.25"
    end_epoch(recovered, trainer_metrics(2, shift=0.25), 2)
    records = read_jsonl(tmp_path / "epoch_report.jsonl")
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert records[2]["types"]["PER"]["precision"] == 0.75


def test_epochs_without_validation_write_nothing(tmp_path):
    callback = NerEpochReportCallback(str(tmp_path))
    # The trainer's metrics still hold epoch 0's validation numbers after an unvalidated epoch.
    end_epoch(callback, trainer_metrics(0), 0, validated=False)
    end_epoch(callback, trainer_metrics(1), 1, is_primary=False)
    end_epoch(callback, {"training_loss": 1.0, "validation_loss": 2.0}, 2)
    assert not (tmp_path / "epoch_report.csv").exists()
    assert not (tmp_path / "epoch_report.jsonl").exists()
    end_epoch(callback, trainer_metrics(3), 3)
    assert [r["epoch"] for r in read_jsonl(tmp_path / "epoch_report.jsonl")] == [3]


def test_training_crash_and_recover_keep_each_epoch_once(tmp_path):
    from allennlp.commands.train import train_model
    from allennlp.common import Params

    train = write_conll(tmp_path / "train.txt", TINY_SENTENCES)
    dev = write_conll(tmp_path / "dev.txt", TINY_SENTENCES[:4])
    config = tiny_config(train, dev)
    config["trainer"]["num_epochs"] = 4
    config["data_loader"]["batch_size"] = 1  # enough updates for a non-zero F1 at the end
    config["trainer"]["callbacks"] = [
        # Validates after epochs 0 and 2 only; it runs first and already flags the next epoch.
        {"type": "should_validate_callback", "validation_interval": 2},
        {"type": "ner_epoch_report"},
        {"type": "test_crash_once_after_epoch", "epoch": 2, "flag_file": str(tmp_path / "crashed")},
    ]
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_model(Params(json.loads(json.dumps(config))), run)
    # Epoch 2 was reported, then training died before its checkpoint (the last one is after
    # epoch 1, so --recover replays epoch 2); the curves were drawn anyway.
    assert [r["epoch"] for r in read_jsonl(run / "epoch_report.jsonl")] == [0, 2]
    assert (run / "model_state_e2_b0.th").exists()
    assert not (run / "model_state_e3_b0.th").exists()
    assert (run / "learning_curves.png").stat().st_size > 0

    train_model(Params(json.loads(json.dumps(config))), run, recover=True)
    records = read_jsonl(run / "epoch_report.jsonl")
    # Unvalidated epochs 1 and 3 are absent, though the trainer's metrics for them still carry
    # the previous validation numbers; the replayed epoch 2 is there once.
    assert [r["epoch"] for r in records] == [0, 2]
    assert json.loads((run / "metrics_epoch_3.json").read_text())["validation_loss"] == (
        pytest.approx(records[1]["validation_loss"])
    )
    rows = read_csv(run / "epoch_report.csv")
    assert [(int(r["epoch"]), r["type"]) for r in rows] == [
        (e, t) for e in (0, 2) for t in ("LOC", "MISC", "ORG", "PER", "overall")
    ]
    # Each record holds what the trainer wrote for that epoch (the replayed epoch 2 included).
    for record in records:
        written = json.loads((run / f"metrics_epoch_{record['epoch']}.json").read_text())
        assert record["scorer"] == "conlleval"
        assert record["validation_loss"] == pytest.approx(written["validation_loss"])
        assert record["overall"]["f1"] == pytest.approx(written["validation_conlleval-f1-overall"])
        assert set(record["types"]) == {"LOC", "MISC", "ORG", "PER"}
        for entity_type, row in record["types"].items():
            # Per-type figures are kept out of the progress bar by a leading underscore.
            assert row["f1"] == pytest.approx(written[f"validation__conlleval-f1-{entity_type}"])
    assert records[-1]["overall"]["f1"] > 0
    assert (run / "learning_curves.png").stat().st_size > 0
    # The curves leave out the stale validation numbers of epochs 1 and 3.
    curves = serialization_dir_curves(run)
    assert curves.epochs == [0, 1, 2, 3]
    assert [loss is None for loss in curves.validation_loss] == [False, True, False, True]
