"""
`allennlp ner-accuracy` end to end on a tiny corpus: it trains with the seed and epoch budget,
scores the best model on the test file once with conlleval, appends a complete row with the run's
identity (config and file hashes), keeps the test predictions as `token gold predicted` lines,
and its conlleval F1 is allennlp's span F1 (`allennlp evaluate`'s) for a BIOUL model. The identity
and its hash cache are tested without training.
"""
import argparse
import hashlib
import json
import os

import pytest
from allennlp.data.data_loaders import MultiProcessDataLoader
from allennlp.models.archival import load_archive
from allennlp.training.util import evaluate

from ner_elmo.commands import ner_accuracy as accuracy
from tiny_corpus import TINY_SENTENCES, tiny_config, write_conll

FIELDS = {"config", "commit", "seed", "epochs_budget", "epochs_run", "completed", "best_epoch", "wall_minutes", "dev_f1",
          "test_f1", "test_f1_per_type", "test_span_f1", "dev_token_accuracy", "test_token_accuracy", "overrides",
          "config_sha256", "resolved_config_sha256", "files", "environment",
          "vocabulary_from", "vocabulary_saw_evaluation_data", "run", "date"}


@pytest.fixture(autouse=True)
def _hash_cache_in_tmp(tmp_path, monkeypatch):
    """File hashes are cached beside the test, not in the user's cache."""
    monkeypatch.setenv("NER_ELMO_HASH_CACHE", str(tmp_path / "hash_cache.json"))


def run_command(arguments):
    """`allennlp ner-accuracy ARGUMENTS`, parsed by the command's own parser, in this process."""
    parser = argparse.ArgumentParser()
    accuracy.NerAccuracy().add_subparser(parser.add_subparsers())
    args = parser.parse_args(["ner-accuracy", *arguments])
    return args.func(args)


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.slow
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
    run_command(arguments)
    (row,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert set(row) == FIELDS
    # The identity: the config as written, and every file the resolved config reads (the data here).
    assert row["config_sha256"] == sha256(config_path)
    assert row["files"] == {key: {"name": path.name, "sha256": sha256(path), "bytes": path.stat().st_size}
                            for key, path in (("train_data_path", train), ("validation_data_path", dev),
                                              ("test_data_path", test))}
    assert row["resolved_config_sha256"] == accuracy.run_identity(str(config_path), {})["resolved_config_sha256"]
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
    # The identity is the one recorded at training, whatever the files are now.
    config_path.write_text(json.dumps({**config, "trainer": {**config["trainer"], "patience": 2}}))
    run_command(arguments + ["--score-only"])
    rescored = json.loads(results.read_text().splitlines()[-1])
    assert rescored == row
    with pytest.raises(SystemExit, match="was trained with --epochs 6"):
        run_command([str(config_path), "--seed", "3", "--epochs", "5", "--runs-dir", str(tmp_path / "runs"),
                     "--results", str(results), "--score-only"])

    # ner-results: the two rows (the same trial scored twice) are one group of the same identity.
    (group,) = accuracy.summarize(accuracy.read_rows(results))
    assert group.recorded and group.n == 2 and group.test == (row["test_f1"], 0.0)
    results.write_text(results.read_text().splitlines()[0] + "\n")
    capsys.readouterr()
    accuracy.ner_results_from_args(argparse.Namespace(results=str(results), markdown=None, rows=True))
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
        run_command(arguments)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results.jsonl").exists()
    # An override is what allennlp will read: the same config with the vocabulary from training data only passes.
    only_train = json.dumps({"datasets_for_vocab_creation": ["train"]})
    assert accuracy.vocabulary_from(accuracy.planned_config(str(config_path), json.loads(only_train))) == ["train"]
    assert accuracy.vocabulary_from({"train_data_path": "t", "validation_data_path": "d"}) == ["train", "validation"]
    assert accuracy.vocabulary_from({"train_data_path": "t", "test_data_path": "x",
                                     "datasets_for_vocab_creation": ["train", "test"]}) == ["train", "test"]


def test_file_hash_is_sha256_streamed_and_cached_by_path_size_and_mtime(tmp_path):
    data = tmp_path / "vectors.txt"
    data.write_bytes(b"the 0.1 0.2\n" * 100_000)  # over one read buffer
    cache = tmp_path / "cache.json"
    digest = accuracy.file_sha256(data, cache)
    assert digest == sha256(data)
    (entry,) = json.loads(cache.read_text()).values()
    assert entry == {"size": data.stat().st_size, "mtime_ns": data.stat().st_mtime_ns, "sha256": digest}
    # An unchanged file (same path, size and mtime) is not read again: the cached hash is the answer.
    cache.write_text(json.dumps({str(data.resolve()): {**entry, "sha256": "cached"}}))
    assert accuracy.file_sha256(data, cache) == "cached"
    # A changed file is: same size, another modification time.
    data.write_bytes(b"the 0.1 0.3\n" * 100_000)
    os.utime(data, ns=(entry["mtime_ns"] + 10**9, entry["mtime_ns"] + 10**9))
    assert accuracy.file_sha256(data, cache) == sha256(data) != digest
    # An unreadable cache costs a re-read, nothing more.
    cache.write_text("{not json")
    assert accuracy.file_sha256(data, cache) == sha256(data)


def write_identity_config(directory, glove=b"the 0.1\n", weights=b"weights"):
    """A config naming a GloVe file, ELMo options and weights, and a CSV with #split data paths."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "glove.txt").write_bytes(glove)
    (directory / "options.json").write_text("{}")
    (directory / "weights.hdf5").write_bytes(weights)
    (directory / "data.csv").write_text("Sentence #,Word,POS,Tag\n")
    config = {
        "dataset_reader": {"type": "ner_gmb_csv"},
        "train_data_path": f"{directory}/data.csv#train",
        "validation_data_path": f"{directory}/data.csv#validation",
        "model": {"encoder": {"num_layers": 2}, "text_field_embedder": {"token_embedders": {
            "tokens": {"type": "embedding", "pretrained_file": str(directory / "glove.txt")},
            "elmo": {"type": "ner_elmo", "options_file": str(directory / "options.json"),
                     "weight_file": str(directory / "weights.hdf5")}}}},
        "trainer": {"num_epochs": 3},
    }
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_identity_names_the_config_and_every_file_it_reads_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("NER_ELMO_ELMO_DIM", "256")
    monkeypatch.setenv("NER_ELMO_ELMO_WEIGHTS", str(tmp_path / "elmo_cpu245" / "lm_weights.hdf5"))
    config = write_identity_config(tmp_path / "a")
    identity = accuracy.run_identity(str(config), {})
    assert identity["config_sha256"] == sha256(config)
    elmo = "model.text_field_embedder.token_embedders.elmo."
    assert identity["files"] == {
        "model.text_field_embedder.token_embedders.tokens.pretrained_file":
            {"name": "glove.txt", "sha256": sha256(tmp_path / "a" / "glove.txt"), "bytes": 8},
        elmo + "options_file": {"name": "options.json", "sha256": sha256(tmp_path / "a" / "options.json"), "bytes": 2},
        elmo + "weight_file": {"name": "weights.hdf5", "sha256": sha256(tmp_path / "a" / "weights.hdf5"), "bytes": 7},
        "train_data_path": {"name": "data.csv#train", "sha256": sha256(tmp_path / "a" / "data.csv"), "bytes": 24},
        "validation_data_path": {"name": "data.csv#validation", "sha256": sha256(tmp_path / "a" / "data.csv"),
                                 "bytes": 24},
    }
    # The configs' variables, a local path reduced to its name (no machine paths in the log).
    assert identity["environment"]["NER_ELMO_ELMO_DIM"] == "256"
    assert identity["environment"]["NER_ELMO_ELMO_WEIGHTS"] == "lm_weights.hdf5"

    # The same files elsewhere: the resolved config names files by content, so the same hash.
    elsewhere = accuracy.run_identity(str(write_identity_config(tmp_path / "b")), {})
    assert elsewhere["resolved_config_sha256"] == identity["resolved_config_sha256"]
    assert elsewhere["config_sha256"] != identity["config_sha256"]  # the file as written names its paths
    # Other weights, or an override: another model. The runner's seeds and budget are not part of it.
    other = accuracy.run_identity(str(write_identity_config(tmp_path / "c", weights=b"other")), {})
    assert other["resolved_config_sha256"] != identity["resolved_config_sha256"]
    assert other["files"][elmo + "weight_file"]["sha256"] != identity["files"][elmo + "weight_file"]["sha256"]
    one_layer = accuracy.run_identity(str(config), {"model.encoder.num_layers": 1})
    assert one_layer["resolved_config_sha256"] != identity["resolved_config_sha256"]
    assert one_layer["config_sha256"] == identity["config_sha256"]
    assert accuracy.train_settings(3, 6, {}).keys() == {*accuracy.RUN_SETTINGS}

    # A file that cannot be read is recorded as such, not guessed.
    (tmp_path / "a" / "weights.hdf5").unlink()
    missing = accuracy.run_identity(str(config), {})["files"][elmo + "weight_file"]
    assert missing["name"] == "weights.hdf5" and missing["sha256"] is None and "error" in missing
