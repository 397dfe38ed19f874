"""
`allennlp ner-export` and `ner_elmo.load`: a bundle tags exactly as the archive's `ner`
predictor, for every exportable architecture; a damaged bundle loads nothing; the runtime never
imports allennlp.
"""
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch
from allennlp.commands.train import train_model
from allennlp.common import Params

import ner_elmo
from config_env import CONFIGS, FIXTURE_ENV, FIXTURES
from ner_elmo.commands.ner_export import ExportError, export_bundle
from ner_elmo.runtime.bundle import BundleError
from ner_elmo.runtime.archive_tagger import ArchiveTagger
from ner_elmo.runtime.tagger import Tagger

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Every architecture the shipped configs train, on the fixtures, two epochs each.
VARIANTS = {
    "crf_fused_bilstm_bioul": ("conll2003_glove_char.jsonnet", {}),
    "softmax": ("conll2003_glove_char_softmax.jsonnet", {}),
    "crf_residual_bilstm_bio": (
        "conll2003_glove_char.jsonnet",
        {
            "model.encoder": {"type": "residual_bilstm", "input_size": 178, "hidden_size": 16, "dropout": 0.5},
            "dataset_reader.label_encoding": "BIO",
            "model.label_encoding": "BIO",
            "vocabulary.label_encoding": "BIO",
        },
    ),
    "crf_stock_lstm_iob1_stock_chars_start_end": (
        "conll2003_glove_char.jsonnet",
        {
            "model.encoder": {"type": "lstm", "input_size": 178, "hidden_size": 8, "num_layers": 2, "bidirectional": True},
            "model.text_field_embedder.token_embedders.token_characters.type": "character_encoding",
            "model.include_start_end_transitions": True,
            "dataset_reader.label_encoding": "IOB1",
            "model.label_encoding": "IOB1",
            "vocabulary.label_encoding": "IOB1",
        },
    ),
    "crf_elmo_mix": ("conll2003_elmo.jsonnet", {"model.encoder.hidden_size": 16}),
    "crf_elmo_one_layer_projected": (
        "conll2003_elmo.jsonnet",
        {
            "model.encoder.hidden_size": 16,
            "model.text_field_embedder.token_embedders.elmo.output_layer": "lstm_outputs1",
            "model.text_field_embedder.token_embedders.elmo.projection_dim": 24,
            "model.encoder.input_size": 50 + 128 + 24,
        },
    ),
}


def _texts():
    """Every sentence of the fixtures' dev file as raw text, and some of it pre-tokenized."""
    sentences, words = [], []
    for line in (FIXTURES / "conll" / "dev.iob1.txt").read_text().splitlines():
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                sentences.append(words)
            words = []
            continue
        words.append(line.split()[0])
    if words:
        sentences.append(words)
    texts = [" ".join(words) for words in sentences]
    return texts + ["Angela Merkel met Emmanuel Macron in Berlin.\n\nThen Zoë flew to Nairobi."], sentences


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def exported(request, tmp_path_factory):
    config, overrides = VARIANTS[request.param]
    root = tmp_path_factory.mktemp(request.param)
    overrides = {"trainer.num_epochs": 2, **overrides}
    params = Params.from_file(str(CONFIGS / config), params_overrides=json.dumps(overrides), ext_vars=FIXTURE_ENV)
    train_model(params, root / "run")
    archive = root / "run" / "model.tar.gz"
    return archive, export_bundle(str(archive), str(root / "bundle"))


def test_a_bundle_tags_as_the_archive_predictor_does(exported):
    archive, bundle = exported
    by_archive = ArchiveTagger(archive)
    by_bundle = ner_elmo.load(bundle)
    assert isinstance(by_bundle, Tagger)
    texts, sentences = _texts()
    inputs = [{"text": text} for text in texts] + [{"tokens": words} for words in sentences[:10]]
    expected = by_archive.predict_batch_json(inputs)
    got = by_bundle.predict_batch_json(inputs)
    assert sum(len(output["tokens"]) for output in got) > 300
    assert sum(len(output["entities"]) for output in got) > 10
    for want, have in zip(expected, got):
        assert have["tokens"] == want["tokens"] and have["token_offsets"] == want["token_offsets"]
        assert have["tags"] == want["tags"]
        assert [{k: v for k, v in e.items() if k != "score"} for e in have["entities"]] == [
            {k: v for k, v in e.items() if k != "score"} for e in want["entities"]
        ]
        for mine, theirs in zip(have["entities"], want["entities"]):
            assert 0.0 <= mine["score"] <= 1.0
            assert mine["score"] == pytest.approx(theirs["score"], abs=1.01e-4)
    # The logits themselves, sentence by sentence, against the allennlp model's.
    predictor = by_archive.predictor
    parsed = [by_bundle.parse(value) for value in inputs[:20]]
    tokens = [sentence for request in parsed for sentence in request.sentences]
    logits, mask = by_bundle.logits(tokens)
    outputs = predictor.predict_batch_instance([predictor._instance(sentence) for sentence in tokens])
    for row, output in enumerate(outputs):
        length = int(mask[row].sum())
        reference = torch.as_tensor(output["logits"][:length])
        assert torch.allclose(logits[row, :length], reference, atol=1e-5), (row, (logits[row, :length] - reference).abs().max())


def test_an_onnx_bundle_tags_as_the_torch_bundle_does(exported):
    archive, bundle = exported
    pytest.importorskip("onnxruntime")
    from ner_elmo.runtime.onnx_tagger import OnnxTagger

    onnx_dir = bundle.parent / "bundle_onnx"
    if "elmo" in bundle.parent.name:
        with pytest.raises(ExportError, match=r"--onnx covers models without ELMo; the input\(s\) elmo run the ELMo biLM"):
            export_bundle(str(archive), str(onnx_dir), onnx=True)
        assert not onnx_dir.exists()
        return
    export_bundle(str(archive), str(onnx_dir), onnx=True)
    by_torch, by_onnx = ner_elmo.load(bundle), ner_elmo.load(onnx_dir)
    assert isinstance(by_onnx, OnnxTagger)
    assert isinstance(ner_elmo.load(onnx_dir, runtime="torch"), Tagger)
    texts, sentences = _texts()
    inputs = [{"text": text} for text in texts] + [{"tokens": words} for words in sentences[:10]]
    expected, got = by_torch.predict_batch_json(inputs), by_onnx.predict_batch_json(inputs)
    assert sum(len(output["entities"]) for output in got) > 10
    for want, have in zip(expected, got):
        assert have["tags"] == want["tags"] and have["token_offsets"] == want["token_offsets"]
        assert [(e["label"], e["start"], e["end"]) for e in have["entities"]] == [
            (e["label"], e["start"], e["end"]) for e in want["entities"]
        ]
        for mine, theirs in zip(have["entities"], want["entities"]):
            assert mine["score"] == pytest.approx(theirs["score"], abs=1.01e-4)
    tokens = [sentence for value in inputs[:30] for sentence in by_onnx.parse(value).sentences]
    onnx_logits, mask = by_onnx.logits(tokens)
    torch_logits, torch_mask = by_torch.logits(tokens)
    assert (mask == torch_mask.numpy()).all()
    numpy.testing.assert_allclose(onnx_logits[mask], torch_logits.numpy()[mask], atol=1e-5)


def test_the_python_api_gives_entities_with_offsets_and_scores(exported):
    _, bundle = exported
    tagger = ner_elmo.load(bundle)
    text = _texts()[0][0]  # the fixtures' first dev sentence, which has entities
    entities = tagger(text)
    assert entities
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text
        assert 0.0 <= entity.score <= 1.0
    assert tagger.tag_batch([text, text.split()], batch_size=1)[0] == entities
    assert tagger(["Angela", "Merkel"]) == tagger.tag_batch([["Angela", "Merkel"]])[0]
    with pytest.raises(ValueError, match="text 1: 'text' has no tokens"):
        tagger.tag_batch([text, "   "])


def test_min_score_leaves_out_doubtful_entities(exported):
    _, bundle = exported
    text = " ".join(_texts()[0][:20])
    everything = ner_elmo.load(bundle)(text)
    assert everything
    threshold = sorted(entity.score for entity in everything)[len(everything) // 2]
    kept = ner_elmo.load(bundle, min_score=threshold)(text)
    assert kept == [entity for entity in everything if entity.score >= threshold]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    config, overrides = VARIANTS["crf_fused_bilstm_bioul"]
    root = tmp_path_factory.mktemp("damaged")
    params = Params.from_file(str(CONFIGS / config), params_overrides=json.dumps({"trainer.num_epochs": 1}), ext_vars=FIXTURE_ENV)
    train_model(params, root / "run")
    export_bundle(str(root / "run" / "model.tar.gz"), str(root / "bundle_onnx"), onnx=True)
    return export_bundle(str(root / "run" / "model.tar.gz"), str(root / "bundle"))


def _copy(bundle: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(bundle, tmp_path / "copy"))


def test_the_bundle_holds_data_only_and_a_model_card(bundle_dir):
    names = sorted(path.name for path in bundle_dir.iterdir())
    assert names == ["MODEL_CARD.md", "config.json", "tokenizer.json", "vocabulary.json", "weights.safetensors"]
    config = json.loads((bundle_dir / "config.json").read_text())
    assert config["format"] == "ner-elmo-bundle" and config["ner_elmo_version"] == ner_elmo.__version__
    assert config["model"]["encoder"]["type"] == "fused_bilstm"
    vocabulary = json.loads((bundle_dir / "vocabulary.json").read_text())
    glove_words = [line.split(" ", 1)[0] for line in (FIXTURES / "glove" / "tiny.50d.txt").read_text().splitlines()]
    # The GloVe extension travels: every GloVe word is in the bundle's vocabulary.
    assert set(glove_words) <= set(vocabulary["tokens"])
    card = (bundle_dir / "MODEL_CARD.md").read_text()
    assert "allennlp ner-export" in card and "dev F1:" in card and "training data:" in card
    onnx_dir = bundle_dir.parent / "bundle_onnx"
    assert sorted(path.name for path in onnx_dir.iterdir()) == sorted(names + ["crf.safetensors", "network.onnx"])
    umask = os.umask(0)
    os.umask(umask)
    for path in [*bundle_dir.iterdir(), *onnx_dir.iterdir()]:  # safetensors writes 0600 files itself
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name


@pytest.mark.parametrize("damage", ["missing", "altered", "config"])
def test_a_damaged_bundle_is_an_error_naming_the_file(bundle_dir, tmp_path, damage):
    copy = _copy(bundle_dir, tmp_path)
    if damage == "missing":
        (copy / "vocabulary.json").unlink()
        match = r"vocabulary\.json: missing"
    elif damage == "altered":
        data = bytearray((copy / "weights.safetensors").read_bytes())
        data[-1] ^= 1
        (copy / "weights.safetensors").write_bytes(bytes(data))
        match = r"weights\.safetensors: altered"
    else:
        (copy / "config.json").write_text("{not json")
        match = r"config\.json: not a JSON file"
    with pytest.raises(BundleError, match=match):
        ner_elmo.load(copy)


def test_a_listed_file_outside_the_bundle_is_refused(bundle_dir, tmp_path):
    copy = _copy(bundle_dir, tmp_path)
    config = json.loads((copy / "config.json").read_text())
    config["files"]["../secret"] = "0" * 64
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"not a file name of the bundle"):
        ner_elmo.load(copy)


def test_an_architecture_that_cannot_be_exported_is_an_error_naming_the_component(tmp_path):
    from tiny_tagger import write_archive

    (tmp_path / "run").mkdir()
    archive = write_archive(tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["model"]["feedforward"] = {"input_dim": 13, "num_layers": 1, "hidden_dims": 13, "activations": "linear"}
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    # The tiny tagger's own archive exports (a pass-through encoder); with a feedforward it cannot.
    export_bundle(str(archive), str(tmp_path / "ok"))
    from allennlp.models.archival import archive_model

    model_state = torch.load(tmp_path / "run" / "best.th")
    feedforward = torch.nn.Linear(13, 13)
    model_state["_feedforward._linear_layers.0.weight"] = feedforward.weight.detach()
    model_state["_feedforward._linear_layers.0.bias"] = feedforward.bias.detach()
    torch.save(model_state, tmp_path / "run" / "best.th")
    archive_model(tmp_path / "run")
    with pytest.raises(ExportError, match="model.feedforward cannot be exported"):
        export_bundle(str(archive), str(tmp_path / "no"))
    assert not (tmp_path / "no").exists()


_NO_ALLENNLP = """
import sys, json
import ner_elmo
after_import = sorted(m for m in ("torch", "allennlp") if m in sys.modules)
tagger = ner_elmo.load(sys.argv[1])
entities = tagger(["Angela", "Merkel", "met", "Emmanuel", "Macron", "in", "Berlin", "."])
entities += tagger("Angela Merkel met Emmanuel Macron in Berlin (Germany). Then she left!")
heavy = ("allennlp", "allennlp_models", "transformers", "torchvision", "spacy", "torch")
print(json.dumps({"after_import": after_import, "loaded": sorted(m for m in heavy if m in sys.modules),
                  "entities": [list(e) for e in entities]}))
"""


@pytest.mark.slow
def test_the_runtime_imports_neither_allennlp_nor_spacy(bundle_dir):
    completed = subprocess.run(
        [sys.executable, "-c", _NO_ALLENNLP, str(bundle_dir)], capture_output=True, text=True, timeout=300, check=True
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["after_import"] == []
    assert result["loaded"] == ["torch"]
    tagger = ner_elmo.load(bundle_dir)
    assert result["entities"] == [list(e) for e in tagger(
        ["Angela", "Merkel", "met", "Emmanuel", "Macron", "in", "Berlin", "."]
    ) + tagger("Angela Merkel met Emmanuel Macron in Berlin (Germany). Then she left!")]


@pytest.mark.slow
def test_an_onnx_bundle_tags_without_importing_torch(bundle_dir):
    pytest.importorskip("onnxruntime")
    onnx_dir = bundle_dir.parent / "bundle_onnx"
    completed = subprocess.run(
        [sys.executable, "-c", _NO_ALLENNLP, str(onnx_dir)], capture_output=True, text=True, timeout=300, check=True
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["after_import"] == [] and result["loaded"] == []
    tokens = ["Angela", "Merkel", "met", "Emmanuel", "Macron", "in", "Berlin", "."]
    tagger = ner_elmo.load(bundle_dir)
    by_torch = tagger(tokens) + tagger("Angela Merkel met Emmanuel Macron in Berlin (Germany). Then she left!")
    assert [e[:4] for e in result["entities"]] == [list(e[:4]) for e in by_torch]
    assert [e[4] for e in result["entities"]] == pytest.approx([e.score for e in by_torch], abs=1.01e-4)


# ------------------------------------------------------------------------------------------
# The commands and the service take a bundle; the torch-only ones never import allennlp.


@pytest.fixture(scope="module")
def lexicon_bundle(tmp_path_factory):
    from tiny_tagger import write_archive

    root = tmp_path_factory.mktemp("lexicon")
    (root / "run").mkdir()
    archive = write_archive(root / "run")
    export_bundle(str(archive), str(root / "bundle_onnx"), onnx=True)
    return archive, export_bundle(str(archive), str(root / "bundle"))


def _predict_args(model, output, *extra):
    import argparse

    from ner_elmo.commands.ner_predict import NerPredict

    parser = argparse.ArgumentParser()
    NerPredict().add_subparser(parser.add_subparsers())
    input_file = str(FIXTURES / "predict" / "input.jsonl")
    return parser.parse_args(["ner-predict", str(model), input_file, "--output-file", str(output), "--silent", *extra])


def test_allennlp_ner_predict_writes_the_same_lines_from_a_bundle_as_from_its_archive(lexicon_bundle, tmp_path):
    from ner_elmo.commands.ner_predict import _ner_predict

    archive, bundle = lexicon_bundle
    _ner_predict(_predict_args(archive, tmp_path / "archive.jsonl"))
    _ner_predict(_predict_args(bundle, tmp_path / "bundle.jsonl", "--batch-size", "2"))
    lines = (tmp_path / "archive.jsonl").read_text().splitlines()
    assert len(lines) == len((FIXTURES / "predict" / "input.jsonl").read_text().splitlines())
    assert any(json.loads(line).get("entities") for line in lines)
    assert (tmp_path / "bundle.jsonl").read_text().splitlines() == lines


_TORCH_ONLY_PREDICT = """
import sys, json
from ner_elmo.cli import main
main(["predict", sys.argv[1], sys.argv[2], "--output-file", sys.argv[3], "--silent"])
heavy = ("allennlp", "allennlp_models", "transformers", "torchvision")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


@pytest.mark.slow
def test_ner_elmo_predict_tags_a_bundle_without_allennlp(lexicon_bundle, tmp_path):
    from ner_elmo.commands.ner_predict import _ner_predict

    archive, bundle = lexicon_bundle
    _ner_predict(_predict_args(archive, tmp_path / "archive.jsonl"))
    input_file = str(FIXTURES / "predict" / "input.jsonl")
    completed = subprocess.run(
        [sys.executable, "-c", _TORCH_ONLY_PREDICT, str(bundle), input_file, str(tmp_path / "out.jsonl")],
        capture_output=True, text=True, timeout=300, check=True,
    )
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
    assert (tmp_path / "out.jsonl").read_text() == (tmp_path / "archive.jsonl").read_text()
    if importlib.util.find_spec("onnxruntime") is not None:  # the same lines from the ONNX bundle
        subprocess.run(
            [sys.executable, "-c", _TORCH_ONLY_PREDICT, str(bundle.parent / "bundle_onnx"), input_file, str(tmp_path / "onnx.jsonl")],
            capture_output=True, text=True, timeout=300, check=True,
        )
        from test_service import check_same_answer

        got, want = (tmp_path / "onnx.jsonl").read_text().splitlines(), (tmp_path / "archive.jsonl").read_text().splitlines()
        assert len(got) == len(want)
        for have, expected in zip(got, want):  # ONNX's kernels round differently: scores to 1e-4
            check_same_answer(have.encode(), expected.encode(), score_tolerance=1.01e-4)
    refused = subprocess.run(
        [sys.executable, "-m", "ner_elmo", "predict", str(archive), input_file], capture_output=True, text=True, timeout=300
    )
    assert refused.returncode != 0 and "is not a bundle directory" in refused.stderr


def test_the_service_answers_from_a_bundle_what_allennlp_predict_writes(lexicon_bundle, tmp_path):
    import argparse

    from test_service import allennlp_predict, check_answers_equal_allennlp_predict, serve

    from ner_elmo.service.serving import add_service_arguments, load_bundle

    archive, bundle = lexicon_bundle
    expected = allennlp_predict(archive, tmp_path)
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    add_service_arguments(parser)
    args = parser.parse_args([str(bundle), "--max-batch-size", "4"])
    with serve(lambda: load_bundle(args), max_batch_size=4) as server:
        server.wait_ready()
        check_answers_equal_allennlp_predict(server, expected)


_TORCH_ONLY_SERVE = """
import sys, json
from ner_elmo.cli import main
try:
    main(["serve", sys.argv[1], "--port", sys.argv[2], "--threads", "1"])
finally:
    heavy = ("allennlp", "allennlp_models", "transformers", "torchvision", "spacy", "torch")
    print(json.dumps(sorted(m for m in heavy if m in sys.modules)), flush=True)
"""


@pytest.mark.slow
def test_ner_elmo_serve_serves_an_onnx_bundle_without_torch_and_stops_on_sigterm(lexicon_bundle, tmp_path):
    import signal
    import socket

    import httpx
    from test_service import _ready, wait_for

    pytest.importorskip("onnxruntime")
    bundle = lexicon_bundle[1].parent / "bundle_onnx"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-c", _TORCH_ONLY_SERVE, str(bundle), str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_for(lambda: _ready(url) or process.poll() is not None, timeout=240, what="ner-elmo serve ready")
        assert process.poll() is None, process.stderr.read().decode("utf-8", "replace")[-3000:]
        answer = httpx.post(url + "/predict", json={"text": "Maria Lindqvist flew to Oslo."}, timeout=60)
        assert [entity["text"] for entity in answer.json()["entities"]] == ["Maria Lindqvist", "Oslo"]
        assert all(0 <= entity["score"] <= 1 for entity in answer.json()["entities"])
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert json.loads(process.stdout.read().decode().strip().splitlines()[-1]) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_stock_crf_tagger_with_elmo_token_embedder_exports_to_the_stateless_biLM(tmp_path):
    """allennlp-models' own ELMo NER setup: `crf_tagger` + `elmo_token_embedder`. Its biLM
    carries LSTM states across batches; from zero states (each sentence alone, states reset) its
    logits are the bundle's."""
    import allennlp_models.tagging  # noqa: F401  (registers crf_tagger, as allennlp's plugins do)
    from allennlp.models.archival import load_archive

    elmo = {
        "type": "elmo_token_embedder",
        "options_file": str(FIXTURES / "elmo" / "options.json"),
        "weight_file": str(FIXTURES / "elmo" / "lm_weights.hdf5"),
        "do_layer_norm": False,
        "dropout": 0.0,
        "projection_dim": 20,
    }
    overrides = {
        "trainer.num_epochs": 2,
        "model.type": "crf_tagger",
        "model.text_field_embedder.token_embedders.elmo": elmo,
        "model.encoder.input_size": 50 + 128 + 20,
        "model.encoder.hidden_size": 16,
    }
    params = Params.from_file(str(CONFIGS / "conll2003_elmo.jsonnet"), params_overrides=json.dumps(overrides), ext_vars=FIXTURE_ENV)
    train_model(params, tmp_path / "run")
    bundle = export_bundle(str(tmp_path / "run" / "model.tar.gz"), str(tmp_path / "bundle"))
    assert {"elmo_options.json", "elmo_weights.hdf5"} <= {path.name for path in bundle.iterdir()}
    tagger = ner_elmo.load(bundle)
    archive = load_archive(str(tmp_path / "run" / "model.tar.gz"))
    from ner_elmo.predictors.ner import NerPredictor

    predictor = NerPredictor(archive.model, archive.dataset_reader, label_encoding="BIOUL")
    stock_lstm = archive.model.text_field_embedder.token_embedder_elmo._elmo._elmo_lstm._elmo_lstm
    texts, _ = _texts()
    sentences = [sentence for text in texts[:25] for sentence in tagger.parse({"text": text}).sentences]
    differing = 0
    for sentence in sentences:
        stock_lstm.reset_states()
        (reference,) = predictor.predict_batch_instance([predictor._instance(sentence)])
        logits, _ = tagger.logits([sentence])
        assert torch.allclose(logits[0], torch.as_tensor(reference["logits"]), atol=1e-5)
        (tags, _), = tagger.tag_sentences([sentence])
        differing += tags != reference["tags"]
    assert differing == 0 and len(sentences) > 20


def test_an_elmo_bundle_runs_its_biLM_in_int8_on_request(tmp_path):
    config, overrides = VARIANTS["crf_elmo_mix"]
    params = Params.from_file(str(CONFIGS / config), params_overrides=json.dumps({"trainer.num_epochs": 1, **overrides}), ext_vars=FIXTURE_ENV)
    train_model(params, tmp_path / "run")
    bundle = export_bundle(str(tmp_path / "run" / "model.tar.gz"), str(tmp_path / "bundle"))
    plain, quantized = ner_elmo.load(bundle), ner_elmo.load(bundle, elmo_dtype="int8")
    assert quantized._network.inputs["elmo"].bilm.compute_dtype == torch.qint8
    texts, _ = _texts()
    sentences = [sentence for text in texts[:10] for sentence in plain.parse({"text": text}).sentences]
    full, mask = plain.logits(sentences)
    reduced, _ = quantized.logits(sentences)
    # The biLM's documented int8 tolerance, carried through the tagger: close, and not equal
    # where this PyTorch has fbgemm's int8 products (elsewhere the biLM warns and runs float32).
    difference = float((full - reduced)[mask].abs().max())
    assert difference < 0.5
    if "fbgemm" in torch.backends.quantized.supported_engines:
        assert difference > 0
