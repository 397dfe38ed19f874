"""`ner_elmo.common.atomic_write`: a destination is the old file or the whole new one."""
import pytest

from ner_elmo.common.atomic_write import atomic_open, atomic_path


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
