"""`ner_elmo.common.atomic_write`: a destination is the old file or the whole new one."""
import errno

import pytest
import torch

from full_disk import hit_the_limit, snapshot, write_on_a_full_disk
from ner_elmo.common.atomic_write import (
    atomic_directory,
    atomic_open,
    atomic_path,
    atomic_paths,
    atomic_torch_save,
    atomic_write_text,
    partial_path,
    remove_partials,
)


@pytest.mark.parametrize("durable", [True, False])
def test_the_written_file_replaces_the_destination_and_nothing_else_is_left(tmp_path, durable):
    destination = tmp_path / "out.txt"
    destination.write_text("old\n")
    with atomic_open(destination, "w", durable=durable, encoding="utf-8") as stream:
        stream.write("new\n")
        assert destination.read_text() == "old\n"  # not before the body returns
    assert destination.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failing_writer_leaves_the_destination_as_it_was(tmp_path, error):
    destination = tmp_path / "model.tar.gz"
    destination.write_bytes(b"finished")
    with pytest.raises(error):
        with atomic_path(destination) as temporary:
            assert temporary.parent == tmp_path and temporary.name.startswith("model.tar.gz.partial-")
            temporary.write_bytes(b"half")
            raise error("killed while writing")
    assert destination.read_bytes() == b"finished"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tar.gz"]


def test_a_writer_that_writes_nothing_fails_and_leaves_no_destination(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "never.th"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_files_written_together_are_replaced_together_or_not_at_all(tmp_path):
    options, weights = tmp_path / "options.json", tmp_path / "lm_weights.hdf5"
    options.write_text("old options")
    weights.write_text("old weights")
    with pytest.raises(OSError):
        with atomic_paths(options, weights) as (new_options, new_weights):
            new_options.write_text("new options")
            raise OSError(errno.ENOSPC, "No space left on device")  # while writing the weights
    assert (options.read_text(), weights.read_text()) == ("old options", "old weights")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm_weights.hdf5", "options.json"]
    with atomic_paths(options, weights) as (new_options, new_weights):
        new_options.write_text("new options")
        new_weights.write_text("new weights")
    assert (options.read_text(), weights.read_text()) == ("new options", "new weights")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm_weights.hdf5", "options.json"]


def test_a_directory_is_created_swapped_or_left_as_it_was(tmp_path):
    destination = tmp_path / "out"
    for version in ("first", "second"):  # absent, then replaced
        with atomic_directory(destination) as temporary:
            assert temporary.parent == tmp_path and temporary.name.startswith("out.partial-")
            assert not temporary.exists()  # the body makes it (Spark wants to)
            (temporary / "part").mkdir(parents=True)
            (temporary / "part" / "rows").write_text(version)
        assert snapshot(destination) == {"part/rows": version.encode()}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(RuntimeError):
        with atomic_directory(destination) as temporary:
            temporary.mkdir()
            (temporary / "half").write_text("half")
            raise RuntimeError("the job failed")
    assert snapshot(destination) == {"part/rows": b"second"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_remove_partials_removes_what_a_killed_writer_left_and_nothing_else(tmp_path):
    (tmp_path / "run" / "corpus").mkdir(parents=True)
    left = [partial_path(tmp_path / "run" / "checkpoint.pt"), partial_path(tmp_path / "run" / "corpus" / "types.json")]
    for path in left:
        path.write_text("half")
    partial_path(tmp_path / "run" / "elmo").mkdir()
    kept = ["checkpoint.pt", "notes.partial", "x.partial-draft"]
    for name in kept:
        (tmp_path / "run" / name).write_text("mine")
    assert len(remove_partials(tmp_path / "run")) == 3
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(["corpus", *kept])
    assert list((tmp_path / "run" / "corpus").iterdir()) == []


@pytest.mark.parametrize("writer", ["torch", "text"])
def test_a_full_disk_leaves_the_previous_file_and_no_temporary(tmp_path, writer):
    destination = tmp_path / ("checkpoint.pt" if writer == "torch" else "metrics.jsonl")
    if writer == "torch":
        atomic_torch_save({"model": {"weight": torch.zeros(10)}, "progress": {"step": 1}}, destination)
        larger = {"model": {"weight": torch.ones(100_000)}, "progress": {"step": 2}}  # made here: the child only writes
        write = lambda: atomic_torch_save(larger, destination)  # noqa: E731
    else:
        atomic_write_text(destination, '{"step": 1}\n')
        write = lambda: atomic_write_text(destination, '{"step": 2}\n' * 10_000)  # noqa: E731
    before = destination.read_bytes()
    assert hit_the_limit(write_on_a_full_disk(write, limit=4096))
    assert destination.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [destination.name]
    write()  # with room, the same write succeeds
    assert destination.read_bytes() != before
    if writer == "torch":
        assert torch.load(destination, weights_only=True)["progress"] == {"step": 2}
