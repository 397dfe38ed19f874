"""
`benchmarks/accuracy.py` end to end on a tiny corpus: it trains with the seed and epoch budget,
scores the best model on the test file once with conlleval, appends a complete row, keeps the
test predictions as `token gold predicted` lines, and its conlleval F1 is allennlp's span F1
(`allennlp evaluate`'s) for a BIOUL model.
"""
import importlib.util
import json

import pytest
from allennlp.data.data_loaders import MultiProcessDataLoader
from allennlp.models.archival import load_archive
from allennlp.training.util import evaluate

from conftest import REPO_ROOT
from tiny_corpus import TINY_SENTENCES, tiny_config, write_conll

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("accuracy", REPO_ROOT / "benchmarks" / "accuracy.py")
accuracy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(accuracy)

FIELDS = {"config", "commit", "seed", "epochs_budget", "epochs_run", "completed", "best_epoch", "wall_minutes", "dev_f1",
          "test_f1", "test_f1_per_type", "test_span_f1", "dev_token_accuracy", "test_token_accuracy", "overrides",
          "vocabulary_from", "vocabulary_saw_evaluation_data", "run", "date"}


def test_runner_trains_scores_once_and_appends_a_row(tmp_path, capsys):
    train = write_conll(tmp_path / "train.txt", TINY_SENTENCES)
    dev = write_conll(tmp_path / "dev.txt", TINY_SENTENCES[:4])
    test = write_conll(tmp_path / "test.txt", TINY_SENTENCES[4:])
    config = tiny_config(train, dev)
    config["test_data_path"] = str(test)
    config["datasets_for_vocab_creation"] = ["train"]
    config["data_loader"]["batch_size"] = 1  # enough updates for a non-zero F1
    config_path = tmp_path / "tiny.json"
    config_path.write_text(json.dumps(config))
    results = tmp_path / "results.jsonl"

    arguments = [str(config_path), "--seed", "3", "--epochs", "6", "--runs-dir", str(tmp_path / "runs"),
                 "--results", str(results)]
    accuracy.main(arguments)
    (row,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert set(row) == FIELDS
    assert (row["seed"], row["epochs_budget"], row["epochs_run"], row["completed"]) == (3, 6, 6, True)
    assert 0 <= row["best_epoch"] < 6 and row["wall_minutes"] > 0
    assert row["commit"] != "unknown"
    assert 0 < row["test_f1"] <= 100 and 0 < row["dev_f1"] <= 100
    assert set(row["test_f1_per_type"]) == {"LOC", "MISC", "ORG", "PER"}
    assert row["vocabulary_from"] == ["train"] and row["vocabulary_saw_evaluation_data"] is False

    # The conlleval F1 is allennlp evaluate's span F1 on the same file (BIOUL tags).
    archive = load_archive(f"{row['run']}/model.tar.gz")
    loader = MultiProcessDataLoader(archive.validation_dataset_reader, str(test), batch_size=3)
    loader.index_with(archive.model.vocab)
    evaluated = evaluate(archive.model, loader, cuda_device=-1)
    assert row["test_f1"] == pytest.approx(100 * evaluated["f1-measure-overall"], abs=1e-9)
    assert row["test_span_f1"] == pytest.approx(row["test_f1"], abs=1e-9)

    # The test predictions, as conlleval.pl reads them: one line per test token.
    predictions = (tmp_path / "runs" / "tiny-s3" / "test_report" / "predictions.conll").read_text().splitlines()
    assert sum(1 for line in predictions if line) == sum(len(sentence) for sentence in TINY_SENTENCES[4:])

    # --score-only scores the same run again without training: the same row.
    accuracy.main(arguments + ["--score-only"])
    rescored = json.loads(results.read_text().splitlines()[-1])
    assert rescored == row
    with pytest.raises(SystemExit, match="was trained with --epochs 6"):
        accuracy.main([str(config_path), "--seed", "3", "--epochs", "5", "--runs-dir", str(tmp_path / "runs"),
                       "--results", str(results), "--score-only"])
    results.write_text(results.read_text().splitlines()[0] + "\n")

    # The README's table row comes from the file.
    accuracy.main(["--table", str(results)])
    table = capsys.readouterr().out.splitlines()
    assert table[-1].startswith(f"| `tiny.json` | 3 | 6 epochs | 6 ({row['best_epoch'] + 1}) |")
    assert f"| {row['test_f1']:.2f} |" in table[-1]


def test_runner_refuses_a_vocabulary_built_from_evaluation_data_before_training(tmp_path):
    train = write_conll(tmp_path / "train.txt", TINY_SENTENCES)
    config = tiny_config(train, write_conll(tmp_path / "dev.txt", TINY_SENTENCES[:4]))
    config["test_data_path"] = str(write_conll(tmp_path / "test.txt", TINY_SENTENCES[4:]))
    config_path = tmp_path / "tiny.json"
    config_path.write_text(json.dumps(config))  # no datasets_for_vocab_creation: allennlp reads all three
    arguments = [str(config_path), "--runs-dir", str(tmp_path / "runs"), "--results", str(tmp_path / "results.jsonl")]
    with pytest.raises(SystemExit, match="vocabulary is built from train, validation, test data"):
        accuracy.main(arguments)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results.jsonl").exists()
    # An override is what allennlp will read: the same config with the vocabulary from training data only passes.
    only_train = json.dumps({"datasets_for_vocab_creation": ["train"]})
    assert accuracy.vocabulary_from(accuracy.planned_config(str(config_path), json.loads(only_train))) == ["train"]
    assert accuracy.vocabulary_from({"train_data_path": "t", "validation_data_path": "d"}) == ["train", "validation"]
    assert accuracy.vocabulary_from({"train_data_path": "t", "test_data_path": "x",
                                     "datasets_for_vocab_creation": ["train", "test"]}) == ["train", "test"]


def test_the_table_flags_rows_whose_vocabulary_saw_evaluation_data(tmp_path, capsys):
    row = {"config": "c.jsonnet", "seed": 1, "epochs_budget": 1, "epochs_run": 1, "best_epoch": 0, "wall_minutes": 1.0,
           "dev_f1": 90.0, "test_f1": 80.0, "test_f1_per_type": {}, "test_span_f1": 80.0, "dev_token_accuracy": 99.0,
           "test_token_accuracy": 98.0, "overrides": {}, "commit": "abc"}
    results = tmp_path / "results.jsonl"
    flags = [True, False, None]
    results.write_text("".join(json.dumps({**row, "vocabulary_saw_evaluation_data": flag}) + "\n" for flag in flags))
    accuracy.main(["--table", str(results)])
    lines = capsys.readouterr().out.splitlines()[-3:]
    assert lines[0].startswith("| `c.jsonnet` **(vocabulary from dev/test too)** |")
    assert lines[1].startswith("| `c.jsonnet` | 1 |")
    assert lines[2].startswith("| `c.jsonnet` (vocabulary not recorded) |")
