"""
The prediction service (`allennlp ner-serve`), tested through a real uvicorn server on a free
loopback port: what each endpoint answers, byte for byte against `allennlp predict`, on the
tiny lexicon tagger, a stock allennlp-models ELMo tagger and a `ner_elmo` ELMo tagger; status
codes for every kind of bad request; micro-batching; a full queue; graceful shutdown.
"""
import argparse
import json
import signal
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import httpx
import pytest
import uvicorn
from allennlp.commands.predict import _predict
from allennlp.commands.train import train_model
from allennlp.common import Params
from allennlp.models.archival import load_archive
from prometheus_client.parser import text_string_to_metric_families

from ner_elmo.commands.ner_serve import NerServe, _ner_serve
from ner_elmo.service.app import ServiceConfig, create_app
from ner_elmo.service.loading import activation_caches, load_serving_predictor
from tiny_tagger import write_archive

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# Inputs as JSON lines, as a user gives them to `allennlp predict`: several sentences and
# paragraphs, non-ASCII words, a line separator inside a string (escaped by dump_line), a lone
# surrogate (written as an ASCII escape), echoed ids, and three inputs the predictor rejects.
INPUT_LINES = [
    '{"id": 1, "text": "Maria Lindqvist flew from Oslo to Nairobi on Tuesday. She met Zoë at '
    'Ørsted.\\n\\nKestrel Trading Company 😀 hired staff in ירושלים."}',
    '{"sentence": "Talks between Maria Lindqvist and Kestrel Trading Company resume in Oslo ."}',
    '{"tokens": ["Zoë", "joined", "Ørsted", "in", "القاهرة", "."]}',
    '{"id": "separator", "text": "Oslo\\u2028Nairobi"}',
    '{"id": "surrogate", "text": "Oslo \\ud800 Nairobi"}',
    '{"id": 6, "text": ""}',
    '{"id": 7}',
    '{"tokens": "Oslo"}',
]
REJECTED = {5, 6, 7}  # indices of the inputs the predictor answers with an error object


# ------------------------------------------------------------------------------------------
# Archives (built once per module) and what `allennlp predict` writes for them.


@pytest.fixture(scope="module")
def lexicon_archive(tmp_path_factory) -> Path:
    """The tiny lexicon tagger of tiny_tagger.py, archived (`ner_crf_tagger`, `ner_conll`)."""
    return write_archive(tmp_path_factory.mktemp("lexicon"))


def elmo_tagger_config(embedder_type: str, elmo_dir: Path) -> dict:
    """
    allennlp-models' ELMo NER setup in miniature: the stock `conll2003` reader (BIOUL), a stock
    `crf_tagger` and either allennlp's `elmo_token_embedder` or `ner_elmo` with the in-memory
    activation cache the project's configs archive, on the fixture ELMo files in `elmo_dir`.
    """
    elmo = {
        "type": embedder_type,
        "options_file": str(elmo_dir / "options.json"),
        "weight_file": str(elmo_dir / "lm_weights.hdf5"),
        "do_layer_norm": False,
        "dropout": 0.0,
    }
    if embedder_type == "ner_elmo":
        elmo["cache"] = "memory"
    return {
        "dataset_reader": {
            "type": "conll2003",
            "tag_label": "ner",
            "coding_scheme": "BIOUL",
            "token_indexers": {
                "tokens": {"type": "single_id", "lowercase_tokens": True},
                "elmo": {"type": "elmo_characters"},
            },
        },
        "train_data_path": str(FIXTURES / "conll" / "train.iob1.txt"),
        "model": {
            "type": "crf_tagger",
            "label_encoding": "BIOUL",
            "constrain_crf_decoding": True,
            "text_field_embedder": {
                "token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 8}, "elmo": elmo}
            },
            "encoder": {"type": "lstm", "input_size": 8 + 32, "hidden_size": 8, "bidirectional": True},
        },
        "data_loader": {"batch_size": 8},
        "trainer": {"num_epochs": 2, "optimizer": {"type": "adam", "lr": 0.01}, "cuda_device": -1},
    }


# The stock archive names ELMo files that are gone after training, as the published archive
# names allennlp's S3 URLs on a machine without internet: these overrides (the offline
# command of docs/serving.md, "allennlp's published ELMo NER model") point it at local copies.
STOCK_ELMO_OVERRIDES = json.dumps({
    "model.text_field_embedder.token_embedders.elmo.options_file": str(FIXTURES / "elmo" / "options.json"),
    "model.text_field_embedder.token_embedders.elmo.weight_file": str(FIXTURES / "elmo" / "lm_weights.hdf5"),
})


@pytest.fixture(scope="module")
def elmo_archives(tmp_path_factory) -> Dict[str, Path]:
    import allennlp_models.tagging  # noqa: F401  (registers crf_tagger, as allennlp's plugins do)

    archives = {}
    for embedder_type in ("elmo_token_embedder", "ner_elmo"):
        directory = tmp_path_factory.mktemp(f"run_{embedder_type}")
        downloads = directory / "downloads"
        downloads.mkdir()
        for name in ("options.json", "lm_weights.hdf5"):
            shutil.copy(FIXTURES / "elmo" / name, downloads / name)
        train_model(Params(elmo_tagger_config(embedder_type, downloads)), str(directory / "run"))
        if embedder_type == "elmo_token_embedder":
            shutil.rmtree(downloads)
        archives[embedder_type] = directory / "run" / "model.tar.gz"
    return archives


def allennlp_predict(archive: Path, tmp_path: Path, overrides: str = "") -> List[str]:
    """The lines `allennlp predict ARCHIVE input.jsonl --predictor ner` writes (its own code)."""
    source, target = tmp_path / "input.jsonl", tmp_path / "predict_output.jsonl"
    source.write_text("\n".join(INPUT_LINES) + "\n", encoding="utf-8")
    _predict(
        argparse.Namespace(
            archive_file=str(archive),
            input_file=str(source),
            output_file=str(target),
            weights_file=None,
            batch_size=3,
            silent=True,
            cuda_device=-1,
            use_dataset_reader=False,
            dataset_reader_choice="validation",
            overrides=overrides,
            predictor="ner",
            predictor_args="",
            file_friendly_logging=False,
            multitask_head=None,
        )
    )
    lines = target.read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == len(INPUT_LINES) + 1
    return lines[:-1]


# ------------------------------------------------------------------------------------------
# A real uvicorn server on a free loopback port, in a thread of the test process.


class LiveServer:
    def __init__(self, app, **uvicorn_options) -> None:
        self.app = app
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **uvicorn_options))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        assert self.app.state.batcher.wait_ready(timeout), self.app.state.batcher.load_error

    def __exit__(self, *exc_info) -> None:
        self.server.should_exit = True
        self.thread.join(60)
        assert not self.thread.is_alive()
        self.socket.close()

    @property
    def batcher(self):
        return self.app.state.batcher


def serve(load, **config) -> LiveServer:
    return LiveServer(create_app(load, ServiceConfig(**config)))


def metric_values(url: str) -> Dict[Tuple[str, Tuple], float]:
    """`GET /metrics` as {(sample name, sorted label items): value}."""
    text = httpx.get(url + "/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def wait_for(condition, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


JSON_HEADERS = {"Content-Type": "application/json"}


def post(url: str, path: str, body, timeout: float = 60, headers: Optional[dict] = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    return httpx.post(url + path, content=content, timeout=timeout, headers={**JSON_HEADERS, **(headers or {})})


def post_in_thread(url: str, path: str, body, results: dict, key) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.__setitem__(key, post(url, path, body)))
    thread.start()
    return thread


class GatedPredictor:
    """
    A real predictor whose model calls with an input of id "gated..." wait for `gate`, and
    whose calls with an input of id "boom" raise: a slow batch and a failing model, on demand.
    """

    def __init__(self, predictor) -> None:
        self.predictor = predictor
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls: List[int] = []  # inputs per call, failed calls included
        self.batches: List[int] = []  # inputs per successful call

    def predict_parsed(self, inputs):
        self.calls.append(len(inputs))
        ids = [str(getattr(value, "extra", value).get("id")) for value in inputs]
        if "boom" in ids:
            raise RuntimeError("simulated model failure")
        if any(name.startswith("gated") for name in ids):
            self.entered.set()
            assert self.gate.wait(60)
        self.batches.append(len(inputs))
        return self.predictor.predict_parsed(inputs)

    def __getattr__(self, name):
        return getattr(self.predictor, name)


# ------------------------------------------------------------------------------------------
# The answers: the same bytes as `allennlp predict`.


def _split_scores(output):
    """The output without its entities' scores, and the scores."""
    output = json.loads(output) if isinstance(output, (str, bytes)) else output
    scores = [entity.pop("score") for entity in output.get("entities") or []]
    return output, scores


def check_same_answer(got, expected, score_tolerance: float) -> None:
    """The same bytes; or, for a model whose numbers move with the batch's other sentences, the
    same output with scores within `score_tolerance`."""
    if not score_tolerance:
        assert got == expected
        return
    (have, have_scores), (want, want_scores) = _split_scores(got), _split_scores(expected)
    assert have == want
    assert have_scores == pytest.approx(want_scores, abs=score_tolerance)


def check_answers_equal_allennlp_predict(server: LiveServer, expected_lines: List[str], score_tolerance: float = 0.0) -> None:
    for index, (line, expected) in enumerate(zip(INPUT_LINES, expected_lines)):
        response = post(server.url, "/predict", line.encode("utf-8"))
        assert response.status_code == (422 if index in REJECTED else 200), response.text
        assert response.headers["content-type"] == "application/json"
        check_same_answer(response.content, (expected + "\n").encode("utf-8"), score_tolerance)
    response = post(server.url, "/predict_batch", ("[" + ",".join(INPUT_LINES) + "]").encode("utf-8"))
    assert response.status_code == 200
    if not score_tolerance:
        assert response.content == ("[" + ",\n".join(expected_lines) + "]\n").encode("utf-8")
    for got, expected in zip(response.json(), expected_lines):
        check_same_answer(got, json.loads(expected), score_tolerance)


def test_lexicon_tagger_answers_what_allennlp_predict_writes(lexicon_archive, tmp_path):
    expected = allennlp_predict(lexicon_archive, tmp_path)
    first = json.loads(expected[0])
    assert [entity["text"] for entity in first["entities"]] == [
        "Maria Lindqvist", "Oslo", "Nairobi", "Zoë", "Ørsted", "Kestrel Trading Company", "😀", "ירושלים",
    ]
    assert json.loads(expected[6]) == {"id": 7, "error": "expected exactly one 'text'/'sentence'/'tokens' key, got none"}
    assert "\\u2028" in expected[3] and "\\ud800" in expected[4]

    load = lambda: load_serving_predictor(str(lexicon_archive))  # noqa: E731
    with serve(load, max_batch_size=4) as server:
        server.wait_ready()
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok", "model": "ready"}
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert ready.json()["max_batch_size"] == 4 and ready.json()["queue_size"] == 32
        check_answers_equal_allennlp_predict(server, expected)
        assert post(server.url, "/predict_batch", b"[]").json() == []

        metrics = metric_values(server.url)
        assert metrics[("ner_ready", ())] == 1
        assert metrics[("ner_requests_total", (("endpoint", "predict"), ("status", "200")))] == 5
        assert metrics[("ner_requests_total", (("endpoint", "predict"), ("status", "422")))] == 3
        assert metrics[("ner_request_latency_seconds_count", (("endpoint", "predict"),))] == 8
        assert metrics[("ner_errors_total", (("kind", "bad_request"),))] == 3 + 3  # alone, then in the batch
        assert metrics[("ner_inputs_total", ())] == 16
        tokens = sum(len(json.loads(line).get("tokens", ())) for line in expected)
        assert metrics[("ner_tokens_total", ())] == 2 * tokens
        assert metrics[("ner_queue_depth", ())] == 0
        assert metrics[("ner_requests_in_progress", ())] == 0


@pytest.mark.parametrize("embedder_type", ["elmo_token_embedder", "ner_elmo"])
def test_elmo_taggers_answer_what_allennlp_predict_writes(elmo_archives, embedder_type, tmp_path):
    """A stock allennlp-models ELMo tagger archive, and one of the ner_elmo embedder."""
    archive = elmo_archives[embedder_type]
    overrides = STOCK_ELMO_OVERRIDES if embedder_type == "elmo_token_embedder" else ""
    expected = allennlp_predict(archive, tmp_path, overrides)
    assert any(json.loads(line).get("tags") for line in expected)

    load = lambda: load_serving_predictor(str(archive), overrides=overrides)  # noqa: E731
    with serve(load, max_batch_size=4) as server:
        server.wait_ready()
        # Serving turns the ner_elmo activation cache off; `allennlp predict` kept it.
        assert activation_caches(server.batcher.predictor._model) == []
        # The same tags; the scores move with the batch's other sentences: by float32 round-off
        # in the stateless ner_elmo biLM (one rounding step of the printed score), by the LSTM
        # states allennlp's stock biLM carries from batch to batch (a few thousandths here).
        tolerance = 0.02 if embedder_type == "elmo_token_embedder" else 1.01e-4
        check_answers_equal_allennlp_predict(server, expected, score_tolerance=tolerance)
    archived = load_archive(str(archive), overrides=overrides).model
    caches = [name for name, _ in activation_caches(archived)]
    assert caches == (["text_field_embedder.token_embedder_elmo"] if embedder_type == "ner_elmo" else [])
    if embedder_type == "elmo_token_embedder":  # without the overrides, the ELMo files are missing
        with pytest.raises(FileNotFoundError, match="downloads/options.json"):
            load_serving_predictor(str(archive))


# ------------------------------------------------------------------------------------------
# Readiness, errors and limits.


def test_not_ready_until_the_model_is_loaded_and_warmed(lexicon_archive):
    release = threading.Event()

    def slow_load():
        assert release.wait(60)
        return load_serving_predictor(str(lexicon_archive))

    with serve(slow_load) as server:
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok", "model": "loading"}
        not_ready = httpx.get(server.url + "/readyz")
        assert (not_ready.status_code, not_ready.json()) == (503, {"status": "loading"})
        refused = post(server.url, "/predict", {"text": "Oslo"})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json() == {"error": "the model is not loaded yet"}
        release.set()
        server.wait_ready()
        assert httpx.get(server.url + "/readyz").status_code == 200
        assert post(server.url, "/predict", {"text": "Oslo"}).json()["tags"] == ["U-LOC"]


def test_a_model_that_cannot_load_fails_health_and_stops_the_command(tmp_path):
    failures = []

    def broken_load():
        raise FileNotFoundError("model.tar.gz not found")

    app = create_app(broken_load, ServiceConfig(), on_load_failure=failures.append)
    with LiveServer(app) as server:
        server.batcher.wait_ready(30)
        health = httpx.get(server.url + "/healthz")
        assert health.status_code == 503
        assert health.json() == {"status": "failed", "model": "failed", "error": "FileNotFoundError: model.tar.gz not found"}
        assert httpx.get(server.url + "/readyz").status_code == 503
        assert [type(error) for error in failures] == [FileNotFoundError]

    # The command exits with the error instead of lingering unready.
    args = ner_serve_args(str(tmp_path / "missing.tar.gz"), "--port", "0", "--log-level", "warning")
    with pytest.raises(FileNotFoundError, match="missing.tar.gz"):
        _ner_serve(args)


def test_bad_requests_get_400_413_and_422(lexicon_archive):
    load = lambda: load_serving_predictor(str(lexicon_archive))  # noqa: E731
    with serve(load, max_batch_size=4, queue_size=8, max_body_bytes=2000) as server:
        server.wait_ready()
        url = server.url

        def answer(path: str, body) -> Tuple[int, object]:
            response = post(url, path, body)
            return response.status_code, response.json()

        # Not JSON, not UTF-8, empty: 400 with the reason.
        assert answer("/predict", b"{not json") == (
            400, {"error": "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"}
        )
        status, body = answer("/predict", b'{"text": "caf\xe9"}')
        assert status == 400 and body["error"].startswith("not valid UTF-8: 'utf-8' codec can't decode byte 0xe9")
        assert answer("/predict_batch", b"  ") == (400, {"error": "the request body is empty: expected JSON"})

        # JSON the predictor rejects: 422 with its error object (pass-through keys echoed).
        assert answer("/predict", {"id": 1}) == (
            422, {"id": 1, "error": "expected exactly one 'text'/'sentence'/'tokens' key, got none"}
        )
        assert answer("/predict", {"id": 2, "tokens": ["Oslo", 3]}) == (
            422, {"id": 2, "error": "'tokens'[1] must be a string, got number"}
        )
        assert answer("/predict", {"text": "x", "tags": []}) == (
            422, {"error": "input key(s) 'tags' are reserved for the output: rename them"}
        )
        assert answer("/predict", [{"text": "Oslo"}]) == (
            422, {"error": "expected a JSON object with a 'text'/'sentence'/'tokens' key, got array"}
        )
        assert answer("/predict_batch", {"text": "Oslo"}) == (422, {"error": "expected a JSON array of inputs, got object"})
        # In a batch, each input gets its own answer: a bad one does not spoil the others.
        status, body = answer("/predict_batch", [{"text": "Oslo"}, {"id": 2, "sentence": 5}])
        assert status == 200
        assert body[0]["tags"] == ["U-LOC"]
        assert body[1] == {"id": 2, "error": "'sentence' must be a string, got number"}

        # Over the body limit: 413, whether the length is declared or the body is chunked.
        large = {"text": "Oslo " * 400}
        assert answer("/predict", large) == (
            413, {"error": "the request body has 2012 bytes, more than the limit of 2000 (--max-body-bytes)"}
        )
        chunked = httpx.post(
            url + "/predict", content=iter([b'{"text": "', b"Oslo " * 500, b'"}']), headers=JSON_HEADERS
        )
        assert (chunked.status_code, chunked.json()) == (
            413, {"error": "the request body has more than the limit of 2000 bytes (--max-body-bytes)"}
        )
        # More inputs in one request than the queue can ever hold: 413 too.
        assert answer("/predict_batch", [{"text": "Oslo"}] * 9) == (
            413, {"error": "the request has 9 inputs, more than the queue holds (8, --queue-size): send at most 8 per request"}
        )
        # Still serving.
        assert answer("/predict", {"sentence": "Maria Lindqvist"})[1]["tags"] == ["B-PER", "L-PER"]
        metrics = metric_values(url)
        errors = {labels[0][1]: value for (name, labels), value in metrics.items() if name == "ner_errors_total"}
        assert errors == {"bad_json": 3, "bad_request": 6, "body_too_large": 3}
        assert metrics[("ner_requests_total", (("endpoint", "predict"), ("status", "413")))] == 2


def test_a_failing_model_answers_500_for_its_request_only(lexicon_archive):
    gated = {}

    def load():
        gated["predictor"] = GatedPredictor(load_serving_predictor(str(lexicon_archive)))
        return gated["predictor"]

    # The three requests make one batch (it is full at 3); it fails, and each is tagged alone.
    with serve(load, max_batch_size=3, max_wait_ms=10000) as server:
        server.wait_ready()
        gated["predictor"].calls.clear()  # the warm-up's
        results: dict = {}
        threads = [
            post_in_thread(server.url, "/predict", {"id": name, "text": "Oslo"}, results, name)
            for name in ("a", "boom", "b")
        ]
        for thread in threads:
            thread.join(60)
        assert gated["predictor"].calls == [3, 1, 1, 1]
        assert results["boom"].status_code == 500
        assert results["boom"].json() == {"error": "the model failed: RuntimeError: simulated model failure"}
        for name in ("a", "b"):
            assert results[name].status_code == 200 and results[name].json()["id"] == name
        assert httpx.get(server.url + "/healthz").status_code == 200
        assert metric_values(server.url)[("ner_errors_total", (("kind", "internal"),))] == 1


# ------------------------------------------------------------------------------------------
# Micro-batching, a full queue, graceful shutdown.


def test_concurrent_requests_are_tagged_together(lexicon_archive):
    texts = {
        "a": "Maria Lindqvist flew to Oslo.",
        "b": "Zoë met Kestrel Trading Company.",
        "c": "Nairobi and Oslo.",
        "d": "Ørsted hired Maria Lindqvist. She left Oslo.",
    }
    predictor = load_serving_predictor(str(lexicon_archive))
    expected = {name: predictor.predict_json({"id": name, "text": text}) for name, text in texts.items()}
    gated: dict = {}

    def load():
        gated["predictor"] = GatedPredictor(predictor)
        return gated["predictor"]

    # A long wait: the four requests, sent at once, land in one batch (or a few).
    with serve(load, max_batch_size=4, max_wait_ms=5000) as server:
        server.wait_ready()
        results: dict = {}
        start = threading.Barrier(len(texts))

        def send(name):
            start.wait()
            results[name] = post(server.url, "/predict", {"id": name, "text": texts[name]})

        threads = [threading.Thread(target=send, args=(name,)) for name in texts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for name in texts:
            assert results[name].status_code == 200
            assert results[name].json() == expected[name]  # each gets its own answer
        metrics = metric_values(server.url)
        batches = metrics[("ner_batch_size_count", ())]
        assert metrics[("ner_batch_size_sum", ())] == 4
        assert metrics[("ner_batch_size_bucket", (("le", "1.0"),))] < batches  # some batch > 1
        assert max(gated["predictor"].batches) > 1


def test_a_full_queue_answers_503_with_retry_after(lexicon_archive):
    gated: dict = {}

    def load():
        gated["predictor"] = GatedPredictor(load_serving_predictor(str(lexicon_archive)))
        return gated["predictor"]

    with serve(load, max_batch_size=1, queue_size=1, max_wait_ms=0) as server:
        server.wait_ready()
        predictor = gated["predictor"]
        results: dict = {}
        first = post_in_thread(server.url, "/predict", {"id": "gated", "text": "Oslo"}, results, "first")
        assert predictor.entered.wait(30)  # the first is in the model, blocked
        second = post_in_thread(server.url, "/predict", {"id": "second", "text": "Nairobi"}, results, "second")
        wait_for(lambda: metric_values(server.url)[("ner_queue_depth", ())] == 1, what="the second request queued")
        full = post(server.url, "/predict", {"id": "third", "text": "Oslo"})
        assert full.status_code == 503
        assert full.headers["retry-after"] == "1"
        assert full.json() == {"error": "the queue is full (1 of 1 inputs waiting)"}
        assert httpx.get(server.url + "/readyz").status_code == 200
        predictor.gate.set()
        first.join(60)
        second.join(60)
        assert results["first"].json()["tags"] == ["U-LOC"]
        assert results["second"].json()["tags"] == ["U-LOC"]
        metrics = metric_values(server.url)
        assert metrics[("ner_errors_total", (("kind", "queue_full"),))] == 1
        assert metrics[("ner_requests_total", (("endpoint", "predict"), ("status", "503")))] == 1


def test_graceful_shutdown_answers_every_accepted_request(lexicon_archive):
    gated: dict = {}

    def load():
        gated["predictor"] = GatedPredictor(load_serving_predictor(str(lexicon_archive)))
        return gated["predictor"]

    server = serve(load, max_batch_size=1, max_wait_ms=0)
    with server:
        server.wait_ready()
        predictor = gated["predictor"]
        results: dict = {}
        threads = [
            post_in_thread(server.url, "/predict", {"id": f"gated{index}", "text": "Oslo"}, results, index)
            for index in range(3)
        ]
        assert predictor.entered.wait(30)
        wait_for(lambda: metric_values(server.url)[("ner_queue_depth", ())] == 2, what="two requests queued")
        server.server.should_exit = True  # what SIGTERM does
        # The listening socket closes: new connections are refused...
        wait_for(lambda: _refused(server.url), what="the listening socket to close")
        # ... while the accepted requests are still answered, all of them.
        predictor.gate.set()
        for thread in threads:
            thread.join(60)
        assert sorted(results) == [0, 1, 2]
        for index, response in results.items():
            assert response.status_code == 200 and response.json()["id"] == f"gated{index}"
    assert server.batcher.state == "stopped"


def ner_serve_args(*argv: str) -> argparse.Namespace:
    """`allennlp ner-serve ARGV`'s arguments, parsed by the command's own parser."""
    parser = argparse.ArgumentParser()
    NerServe().add_subparser(parser.add_subparsers())
    return parser.parse_args(["ner-serve", *argv])


def _refused(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    return False


@pytest.mark.slow
def test_allennlp_ner_serve_command_stops_gracefully_on_sigterm(lexicon_archive, tmp_path):
    """The real command, found through `.allennlp_plugins`: ready, answers, SIGTERM, exit 0."""
    (tmp_path / ".allennlp_plugins").write_text("ner_elmo\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "allennlp", "ner-serve", str(lexicon_archive), "--port", str(port),
               "--max-wait-ms", "2000", "--threads", "1"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _ready(url) or process.poll() is not None, timeout=240, what="ner-serve ready")
        assert process.poll() is None, process.stderr.read().decode("utf-8", "replace")[-3000:]
        results: dict = {}
        request = post_in_thread(url, "/predict", {"id": 1, "text": "Maria Lindqvist flew to Oslo."}, results, 1)
        wait_for(lambda: metric_values(url)[("ner_requests_in_progress", ())] == 1, what="the request accepted")
        process.send_signal(signal.SIGTERM)  # the request waits 2 s for batch mates
        request.join(60)
        assert results[1].status_code == 200
        assert [entity["text"] for entity in results[1].json()["entities"]] == ["Maria Lindqvist", "Oslo"]
        assert process.wait(60) == 0
        log = process.stderr.read().decode("utf-8", "replace")
        assert "model loaded and warmed" in log and "Shutting down" in log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


# ------------------------------------------------------------------------------------------
# Hostile requests: limits, deadlines, content type, Host, API key, CORS, slow clients.


def test_limits_answer_413_naming_the_limit_and_hostile_json_400_or_422(lexicon_archive):
    load = lambda: load_serving_predictor(str(lexicon_archive))  # noqa: E731
    with serve(load, max_text_chars=50, max_request_tokens=10, max_batch_texts=2) as server:
        server.wait_ready()

        def answer(path: str, body) -> Tuple[int, object]:
            response = post(server.url, path, body)
            return response.status_code, response.json()

        assert answer("/predict", {"text": "Oslo " * 20}) == (
            413, {"error": "'text' has 100 characters, more than the limit of 50 (--max-text-chars)"}
        )
        assert answer("/predict_batch", [{"text": "Oslo"}, {"tokens": ["Oslo"] * 12}]) == (
            413, {"error": "input 1: 'tokens' has 59 characters, more than the limit of 50 (--max-text-chars)"}
        )
        assert answer("/predict_batch", [{"text": "Oslo"}] * 3) == (
            413, {"error": "the request has 3 inputs, more than the limit of 2 (--max-batch-texts)"}
        )
        too_many = {"error": "the request has more than 10 tokens (at least 11), the limit per request "
                    "(--max-request-tokens): send less text per request"}
        assert answer("/predict", {"text": "a b c d e f g h i j k"}) == (413, too_many)
        assert answer("/predict_batch", [{"text": "a b c d e f"}, {"tokens": list("abcde")}]) == (413, too_many)
        # A run of punctuation is one token per character (cut before spaCy: no stall).
        assert answer("/predict", {"text": ")" * 11})[0] == 413
        # The hostile lines of the command-line test, here as request bodies.
        deep = b'{"id": "deep", "text": "Oslo", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
        assert answer("/predict", deep) == (400, {"error": "JSON nested deeper than 64 levels (max_json_depth)"})
        assert answer("/predict", ["not", "an", "object"]) == (
            422, {"error": "expected a JSON object with a 'text'/'sentence'/'tokens' key, got array"}
        )
        # Still serving, and at the limits exactly, accepted.
        assert answer("/predict", {"text": "Oslo " * 9 + "Oslo"})[1]["tags"] == ["U-LOC"] * 10
        errors = {labels[0][1]: value for (name, labels), value in metric_values(server.url).items() if name == "ner_errors_total"}
        assert errors == {"text_too_large": 2, "too_many_texts": 1, "too_many_tokens": 3, "bad_json": 1, "bad_request": 1}


def test_only_json_bodies_from_allowed_hosts_with_the_key(lexicon_archive):
    load = lambda: load_serving_predictor(str(lexicon_archive))  # noqa: E731
    with serve(load, api_key="s3cret", allowed_hosts=("localhost", "127.0.0.1", "ner.example.com")) as server:
        server.wait_ready()
        key = {"Authorization": "Bearer s3cret"}
        body = json.dumps({"text": "Oslo"}).encode()
        # What a foreign page can send without a preflight: text/plain. Refused, key or not.
        plain = httpx.post(server.url + "/predict", content=body, headers={"Content-Type": "text/plain", "Origin": "http://evil.example", **key})
        assert (plain.status_code, plain.json()) == (415, {"error": "expected Content-Type: application/json, got text/plain"})
        # DNS rebinding: the browser sends the attacker's name as Host.
        rebound = post(server.url, "/predict", {"text": "Oslo"}, headers={"Host": "evil.example:8000", **key})
        assert (rebound.status_code, rebound.json()) == (400, {"error": "Host 'evil.example:8000' is not allowed (--allowed-hosts)"})
        assert post(server.url, "/predict", {"text": "Oslo"}, headers={"Host": "ner.example.com", **key}).status_code == 200
        # The key: missing or wrong is 401 (metrics too); the probes need neither key nor Host.
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            refused = post(server.url, "/predict", {"text": "Oslo"}, headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert httpx.get(server.url + "/metrics").status_code == 401
        assert httpx.get(server.url + "/metrics", headers=key).status_code == 200
        for probe in ("/healthz", "/readyz"):
            assert httpx.get(server.url + probe, headers={"Host": "10.0.0.7:8000"}).status_code == 200
        assert post(server.url, "/predict", {"text": "Oslo"}, headers=key).json()["tags"] == ["U-LOC"]
        # No CORS unless asked: a preflight gets no allow-origin header.
        preflight = httpx.options(server.url + "/predict", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in preflight.headers


def test_cors_only_for_the_given_origins(lexicon_archive):
    load = lambda: load_serving_predictor(str(lexicon_archive))  # noqa: E731
    with serve(load, cors_origins=("http://app.example",), api_key="k") as server:
        server.wait_ready()

        def preflight(origin: str) -> httpx.Response:
            return httpx.options(server.url + "/predict", headers={
                "Origin": origin, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type"})

        allowed = preflight("http://app.example")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://app.example"
        assert "access-control-allow-origin" not in preflight("http://evil.example").headers
        answer = post(server.url, "/predict", {"text": "Oslo"}, headers={"Origin": "http://app.example", "Authorization": "Bearer k"})
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "http://app.example"


def test_a_request_past_its_deadline_gets_504_and_the_service_goes_on(lexicon_archive):
    gated: dict = {}

    def load():
        gated["predictor"] = GatedPredictor(load_serving_predictor(str(lexicon_archive)))
        return gated["predictor"]

    with serve(load, max_batch_size=1, max_wait_ms=0, request_timeout_s=0.5) as server:
        server.wait_ready()
        predictor = gated["predictor"]
        predictor.calls.clear()
        results: dict = {}
        first = post_in_thread(server.url, "/predict", {"id": "gated", "text": "Oslo"}, results, "first")
        assert predictor.entered.wait(30)  # in the model, held
        queued = post(server.url, "/predict", {"id": "queued", "text": "Oslo"})  # waits behind it
        first.join(30)
        timeout = {"error": "no answer within the request's deadline of 0.5 s (--request-timeout)"}
        assert (results["first"].status_code, results["first"].json()) == (504, timeout)
        assert (queued.status_code, queued.json()) == (504, timeout)
        assert httpx.get(server.url + "/healthz").status_code == 200
        predictor.gate.set()
        assert post(server.url, "/predict", {"id": "after", "text": "Oslo"}).json()["tags"] == ["U-LOC"]
        # The expired queued request never reached the model.
        assert predictor.calls == [1, 1]
        assert metric_values(server.url)[("ner_errors_total", (("kind", "timeout"),))] == 2


def _raw_exchange(port: int, data: bytes, wait: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(data)
        time.sleep(wait)
        chunks = []
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_slow_clients_are_cut_off(lexicon_archive):
    from ner_elmo.service.protocol import with_header_timeout

    load = lambda: load_serving_predictor(str(lexicon_archive))  # noqa: E731
    app = create_app(load, ServiceConfig(body_timeout_s=0.5))
    with LiveServer(app, http=with_header_timeout(0.5), timeout_keep_alive=1) as server:
        server.wait_ready()
        started = time.monotonic()
        # Idle from the start, and half-sent headers: closed without an answer.
        assert _raw_exchange(server.port, b"", 0) == b""
        assert _raw_exchange(server.port, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n", 0) == b""
        # A half-sent body: 408, and the connection closed.
        head = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{\"text\": ")
        answer = _raw_exchange(server.port, head, 0)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"the request body did not arrive within 0.5 s (--body-timeout)" in answer
        assert time.monotonic() - started < 20
        assert post(server.url, "/predict", {"text": "Oslo"}).json()["tags"] == ["U-LOC"]


def test_binding_beyond_loopback_without_a_key_warns(caplog, monkeypatch, tmp_path):
    from ner_elmo.commands import ner_serve

    monkeypatch.delenv(ner_serve.API_KEY_VARIABLE, raising=False)
    for host, warned in (("0.0.0.0", True), ("127.0.0.1", False), ("::1", False)):
        caplog.clear()
        with pytest.raises(FileNotFoundError):
            _ner_serve(ner_serve_args(str(tmp_path / "missing.tar.gz"), "--host", host, "--port", "0", "--log-level", "warning"))
        assert any("without an API key" in record.getMessage() for record in caplog.records) == warned, host
    monkeypatch.setenv(ner_serve.API_KEY_VARIABLE, "from-the-environment")
    caplog.clear()
    with pytest.raises(FileNotFoundError):
        _ner_serve(ner_serve_args(str(tmp_path / "missing.tar.gz"), "--host", "0.0.0.0", "--port", "0", "--log-level", "warning"))
    assert not any("without an API key" in record.getMessage() for record in caplog.records)
    assert not any("from-the-environment" in record.getMessage() for record in caplog.records)
