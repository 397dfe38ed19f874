"""
Hostile model archives, built on purpose: each must be refused with an error naming what is
wrong, through every path of the project that opens an archive, and the marker file its payload
would write must never appear.
"""
import io
import json
import os
import tarfile
import uuid
from pathlib import Path
from typing import Callable, Dict

import pytest
import torch
from allennlp.common.checks import ConfigurationError

from ner_elmo.commands.ner_html import predict_lines
from ner_elmo.commands.ner_predict import NerPredict, _ner_predict
from ner_elmo.commands.ner_report import ner_report_from_archive
from ner_elmo.common.safe_archive import (
    UnsafeArchiveError,
    UntrustedConfigError,
    check_registered_types,
    extract_safely,
    load_archive_safely,
)
from ner_elmo.service.loading import load_serving_predictor
from tiny_tagger import build_tagger, tagger_params

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class Payload:
    """Unpickling it runs `os.system`: what a hostile weights file carries."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def archive_from(directory: Path, config: dict, weights=None, extra: Callable[[tarfile.TarFile], None] = None) -> Path:
    """A model.tar.gz holding `config`, the tiny tagger's vocabulary and `weights` (its own by default)."""
    model = build_tagger()
    directory.mkdir(parents=True, exist_ok=True)
    model.vocab.save_to_files(str(directory / "vocabulary"))
    torch.save(model.state_dict() if weights is None else weights, directory / "weights.th")
    (directory / "config.json").write_text(json.dumps(config))
    path = directory / "model.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name in ("config.json", "weights.th", "vocabulary"):
            archive.add(directory / name, arcname=name)
        if extra is not None:
            extra(archive)
    return path


def good_config() -> dict:
    return {"dataset_reader": {"type": "ner_conll"}, "model": tagger_params(), "train_data_path": "unused"}


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / f"marker-{uuid.uuid4().hex}"
    yield path
    assert not path.exists(), "the hostile archive's payload ran"


def loaders(tmp_path: Path) -> Dict[str, Callable[[Path], object]]:
    """Every way the project opens an archive, each as a function of the archive's path."""
    texts = tmp_path / "texts.txt"
    texts.write_text("Maria Lindqvist flew to Oslo.\n")
    conll = FIXTURES / "conll" / "dev.iob1.txt"

    def predict_command(archive: Path):
        parser = __import__("argparse").ArgumentParser()
        NerPredict().add_subparser(parser.add_subparsers())
        _ner_predict(parser.parse_args(["ner-predict", str(archive), str(texts), "--output-file", str(tmp_path / "o")]))

    return {
        "load_archive_safely": lambda archive: load_archive_safely(archive),
        "service and Spark (load_serving_predictor)": lambda archive: load_serving_predictor(str(archive)),
        "ner-predict": predict_command,
        "ner-report": lambda archive: ner_report_from_archive(archive, conll, tmp_path / "report"),
        "ner-html": lambda archive: predict_lines(archive, texts),
    }


# ------------------------------------------------------------------------------------------
# Configs that would run code.


@pytest.mark.parametrize(
    "where, place",
    [
        ("dataset_reader.type", lambda config, value: config["dataset_reader"].update(type=value)),
        (
            "model.text_field_embedder.token_embedders.tokens.type",
            lambda config, value: config["model"]["text_field_embedder"]["token_embedders"]["tokens"].update(type=value),
        ),
        ("model.encoder.type", lambda config, value: config["model"].update(encoder={"type": value, "input_dim": 13})),
        ("trainer.callbacks.1.type", lambda config, value: config.update(trainer={"callbacks": [{"type": "tensorboard"}, {"type": value}]})),
    ],
)
def test_a_dotted_type_at_any_depth_is_refused_before_anything_runs(tmp_path, where, place):
    config = good_config()
    place(config, "os.system")
    archive = archive_from(tmp_path / "run", config)
    with pytest.raises(UntrustedConfigError, match=rf"{where} is 'os\.system', a dotted import path"):
        load_archive_safely(archive)


def test_the_marker_payload_is_refused_by_every_loader(tmp_path, marker):
    config = good_config()
    config["dataset_reader"] = {"type": "os.system", "command": f"touch {marker}"}
    archive = archive_from(tmp_path / "run", config)
    for name, load in loaders(tmp_path).items():
        with pytest.raises(UntrustedConfigError, match=r"dataset_reader\.type is 'os\.system'"):
            load(archive)
        assert not marker.exists(), name


def test_from_archive_and_unregistered_and_non_string_types_are_refused(tmp_path):
    for value, message in [
        ("from_archive", "loads another archive without these checks"),
        ("no_such_component", "which no imported package registered"),
        (["ner_conll"], "a component type must be a string"),
    ]:
        config = good_config()
        config["model"] = {"type": value, "archive_file": "elsewhere.tar.gz"}
        with pytest.raises(UntrustedConfigError, match=message):
            check_registered_types(config, "test")


def test_trust_archive_lets_a_user_load_the_dotted_types_they_wrote(tmp_path):
    config = good_config()
    config["model"]["type"] = "ner_elmo.models.ner_crf_tagger.NerCrfTagger"  # a class by import path
    archive = archive_from(tmp_path / "run", config)
    with pytest.raises(UntrustedConfigError, match="model.type is 'ner_elmo.models.ner_crf_tagger.NerCrfTagger'"):
        load_serving_predictor(str(archive))
    predictor = load_serving_predictor(str(archive), trust_archive=True)
    assert predictor.predict_json({"text": "Oslo"})["tags"] == ["U-LOC"]


def test_overrides_are_checked_too(tmp_path, marker):
    archive = archive_from(tmp_path / "run", good_config())
    with pytest.raises(UntrustedConfigError, match=r"dataset_reader\.type is 'os\.system'"):
        load_archive_safely(archive, overrides={"dataset_reader": {"type": "os.system", "command": f"touch {marker}"}})
    assert load_archive_safely(archive).model is not None  # the clean archive loads


def test_a_config_that_is_jsonnet_not_json_is_refused(tmp_path):
    archive = archive_from(tmp_path / "run", good_config())
    with tarfile.open(archive, "w:gz") as replaced:
        data = b'local secret = importstr "/etc/hostname"; {"model": {"type": secret}}'
        info = tarfile.TarInfo("config.json")
        info.size = len(data)
        replaced.addfile(info, io.BytesIO(data))
    with pytest.raises(ConfigurationError, match="cannot read the archived config as JSON"):
        load_archive_safely(archive)


# ------------------------------------------------------------------------------------------
# Tar members that would be written outside the folder.


def _add_file(archive: tarfile.TarFile, name: str, data: bytes = b"payload") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def _add_link(archive: tarfile.TarFile, name: str, target: str, kind=tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    archive.addfile(info)


def _add_device(archive: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    archive.addfile(info)


@pytest.mark.parametrize(
    "member, add",
    [
        ("../{name}", lambda archive, outside, name: _add_file(archive, f"../{name}")),
        ("{outside}/{name}", lambda archive, outside, name: _add_file(archive, f"{outside}/{name}")),
        ("escape", lambda archive, outside, name: (_add_link(archive, "escape", str(outside)), _add_file(archive, f"escape/{name}"))),
        ("hard", lambda archive, outside, name: _add_link(archive, "hard", f"{outside}/{name}", tarfile.LNKTYPE)),
        ("null", lambda archive, outside, name: _add_device(archive, "null")),
    ],
)
def test_members_leaving_the_folder_are_refused_and_nothing_is_written(tmp_path, member, add):
    outside = tmp_path / "outside"
    outside.mkdir()
    name = f"written-{uuid.uuid4().hex}"
    (outside / "target").write_text("x")
    archive = archive_from(tmp_path / "run", good_config(), extra=lambda tar: add(tar, outside, name))
    expected = member.format(outside=str(outside).lstrip("/"), name=name)
    with pytest.raises(UnsafeArchiveError, match="refusing to extract member"):
        load_archive_safely(archive)
    destination = tmp_path / "extracted"
    destination.mkdir()
    with pytest.raises(UnsafeArchiveError) as raised:
        extract_safely(archive, destination)
    assert repr(expected) in str(raised.value) or repr("/" + expected) in str(raised.value)
    assert list(destination.iterdir()) == []  # nothing at all: not even the good members
    assert not (tmp_path / name).exists() and not (outside / name).exists()


# ------------------------------------------------------------------------------------------
# Weights that would run code when unpickled.


def test_weights_with_pickled_code_are_refused(tmp_path, marker):
    model = build_tagger()
    weights = dict(model.state_dict())
    weights["payload"] = Payload(f"touch {marker}")
    archive = archive_from(tmp_path / "run", good_config(), weights=weights)
    for name, load in loaders(tmp_path).items():
        with pytest.raises(UnsafeArchiveError, match="not a weights-only state dict"):
            load(archive)
        assert not marker.exists(), name
