import tarfile

import pytest
import torch
from allennlp.commands import train as train_command
from allennlp.models import archival

from ner_elmo.training.atomic_archive import atomic_archive_model


def _serialization_dir(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "best.th")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "vocabulary").mkdir()
    (tmp_path / "vocabulary" / "labels.txt").write_text("O\n")
    return tmp_path


def test_allennlp_train_archives_through_the_atomic_writer():
    assert train_command.archive_model is atomic_archive_model


def test_archive_is_complete(tmp_path):
    path = atomic_archive_model(_serialization_dir(tmp_path))
    with tarfile.open(path) as archive:
        assert {"config.json", "weights.th", "vocabulary/labels.txt"} <= set(archive.getnames())
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []


def test_failure_while_archiving_leaves_no_archive(tmp_path, monkeypatch):
    serialization_dir = _serialization_dir(tmp_path)
    (serialization_dir / "model.tar.gz").write_bytes(b"finished archive from an earlier run")
    real_add = tarfile.TarFile.add

    def add_then_die(self, name, *args, **kwargs):
        real_add(self, name, *args, **kwargs)
        raise KeyboardInterrupt("killed while archiving")

    monkeypatch.setattr(tarfile.TarFile, "add", add_then_die)
    with pytest.raises(KeyboardInterrupt):
        atomic_archive_model(serialization_dir)
    # The earlier archive is untouched and no partial file is left behind.
    assert (serialization_dir / "model.tar.gz").read_bytes() == b"finished archive from an earlier run"
    assert not [p for p in serialization_dir.iterdir() if "partial" in p.name]
    assert archival.archive_model is not atomic_archive_model  # allennlp's own function is unchanged
