"""
allennlp's distributed training (torch DistributedDataParallel) on two CPU workers (gloo), with
the package's reader, tagger, conlleval metric, `rng_state` callback and `ner_atomic`
checkpointer: a run dies at the end of an epoch on every worker and `recover` resumes it.

Each run spawns two workers that import allennlp (tens of seconds), so the test makes two runs
and checks everything on them.
"""
import json
from collections import Counter
from pathlib import Path

import pytest
from allennlp.commands.train import train_model
from allennlp.common import Params
from allennlp.data.data_loaders import MultiProcessDataLoader
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor
from allennlp.training.util import evaluate

from ner_elmo.data.tag_schemes import to_spans
from tiny_corpus import TINY_SENTENCES, tiny_config, write_conll

pytestmark = pytest.mark.slow

CRASH_EPOCH = 2
# An odd count: the workers' shards differ in size (5 and 4), so do their shuffles' draws from
# Python's generator, and a worker resumed with the other's generator state would go astray.
TRAIN = TINY_SENTENCES + [[("Rita", "I-PER"), ("Vos", "I-PER"), ("visited", "O"), ("Lisbon", "I-LOC"), (".", "O")]]


def _params(tmp_path: Path) -> Params:
    config = tiny_config(write_conll(tmp_path / "train.txt", TRAIN), write_conll(tmp_path / "dev.txt", TINY_SENTENCES))
    config["model"]["dropout"] = 0.5  # dropout draws from torch's generator every batch
    config["data_loader"] = {"batch_size": 2, "shuffle": True}  # the order from Python's
    config["distributed"] = {"cuda_devices": [-1, -1]}
    config["trainer"]["num_epochs"] = CRASH_EPOCH + 1
    config["trainer"]["checkpointer"] = {"type": "ner_atomic", "keep_most_recent_by_count": 10}
    config["trainer"]["callbacks"] = [
        {"type": "rng_state"},
        {"type": "test_worker_record", "record_dir": str(tmp_path)},
        {"type": "test_crash_every_worker_after_epoch", "epoch": CRASH_EPOCH, "flag_file": str(tmp_path / "crashed")},
    ]
    return Params(config)


def _records(tmp_path: Path, rank: int):
    lines = (tmp_path / f"worker_record_w{rank}.jsonl").read_text().splitlines()
    return {(record["label"], record["epoch"]): record for record in map(json.loads, lines)}


def test_two_cpu_workers_train_validate_on_the_whole_dev_set_and_recover_exactly(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(Exception, match="simulated crash"):
        train_model(_params(tmp_path), run, include_package=["distributed_checks"])
    # Only the primary wrote checkpoints: one file per state, no per-worker copies.
    assert sorted(path.name for path in run.glob("*.th")) == [
        "best.th", "model_state_e1_b0.th", "model_state_e2_b0.th", "training_state_e1_b0.th", "training_state_e2_b0.th"
    ]
    train_model(_params(tmp_path), run, recover=True, include_package=["distributed_checks"])

    first, second = _records(tmp_path, 0), _records(tmp_path, 1)
    assert sorted(first) == sorted(second) == [("first", 0), ("first", 1), ("first", 2), ("resumed", 2)]
    tokens = sum(len(sentence) for sentence in TINY_SENTENCES)
    chunks = Counter(label for sentence in TINY_SENTENCES for label, _, _ in to_spans([tag for _, tag in sentence], "IOB1"))
    for key in first:
        # Both workers trained, on two batches of 2 each (allennlp stops the worker with 3
        # batches when the other has run out)...
        assert first[key]["train_sentences"] == second[key]["train_sentences"] == 4
        # ... and both report the conlleval counts of the whole dev set, not of their half.
        for record in (first[key], second[key]):
            assert record["validation_tokens"] == tokens
            assert record["validation_gold_chunks"] == dict(chunks)
    # The workers' generators differ (own batches, own dropout draws), so each must get its own
    # back: after the resumed epoch, each worker's generators and the weights are those of the
    # run that was never interrupted.
    assert first[("first", 1)]["rng"] != second[("first", 1)]["rng"]
    for records in (first, second):
        assert records[("resumed", CRASH_EPOCH)]["rng"] == records[("first", CRASH_EPOCH)]["rng"]
        assert records[("resumed", CRASH_EPOCH)]["weights"] == records[("first", CRASH_EPOCH)]["weights"]

    assert (run / "out_worker0.log").is_file() and (run / "out_worker1.log").is_file()
    assert not [path.name for path in run.iterdir() if "partial" in path.name or "_w1" in path.name and path.suffix == ".th"]
    # The reported best validation scores (span F1 and conlleval, summed over the workers) are
    # those of the archived model on the whole dev set in one process.
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"] == CRASH_EPOCH
    archive = load_archive(str(run / "model.tar.gz"))
    loader = MultiProcessDataLoader(archive.validation_dataset_reader, str(tmp_path / "dev.txt"), batch_size=3)
    loader.index_with(archive.model.vocab)
    evaluated = evaluate(archive.model, loader)
    # (Per-type conlleval figures carry a leading underscore: kept out of the progress bar.)
    for name in ("f1-measure-overall", "conlleval-f1-overall", "_conlleval-recall-PER"):
        assert metrics[f"best_validation_{name}"] == pytest.approx(evaluated[name], abs=1e-9)
    predictor = Predictor.from_archive(archive, "ner")
    output = predictor.predict_json({"text": "Anna Berg visited Tallinn."})
    assert output["tokens"] == ["Anna", "Berg", "visited", "Tallinn", "."] and len(output["tags"]) == 5
