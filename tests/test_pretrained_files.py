"""
ELMo and GloVe files that cannot be had fail while the model is built, at once, naming the file,
the reason and the variable to set; URLs that work are downloaded into allennlp's cache (a local
HTTP server stands in for the internet).
"""
import functools
import http.server
import shutil
import threading
import time

import pytest
from allennlp.common import Params, file_utils
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.modules.token_embedders import TokenEmbedder

from ner_elmo.modules.token_embedders.ner_elmo import NerElmoTokenEmbedder
from ner_elmo.modules.token_embedders.ner_embedding import NerEmbedding

# Nothing listens on the discard port of this machine: the connection is refused at once.
UNREACHABLE = "http://127.0.0.1:9/elmo_weights.hdf5"
README_FIX = "(see docs/configs.md, Environment variables)"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    # A proxy would answer for 127.0.0.1 instead of the refused or local server.
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty allennlp download cache."""
    directory = tmp_path / "cache"
    monkeypatch.setattr(file_utils, "CACHE_DIRECTORY", str(directory))
    return directory


@pytest.fixture
def server(tmp_path):
    """A local HTTP server of `tmp_path / "served"`: yields its base URL; `stop()` shuts it."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    class Server:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        directory = served
        running = True

        @classmethod
        def stop(cls):
            if cls.running:
                httpd.shutdown()
                httpd.server_close()
                cls.running = False

    yield Server
    Server.stop()


def elmo_error(**kwargs) -> str:
    with pytest.raises(ConfigurationError) as error:
        NerElmoTokenEmbedder(implementation="stock", **kwargs)
    return error.value.message


def test_missing_elmo_file_names_the_variable_that_set_it(tmp_path, elmo_files, monkeypatch):
    options, weights = elmo_files
    missing = str(tmp_path / "options.json")
    monkeypatch.setenv("NER_ELMO_ELMO_OPTIONS", missing)
    assert elmo_error(options_file=missing, weight_file=weights) == (
        f"cannot open ELMo options file '{missing}': no such file. "
        f"Set NER_ELMO_ELMO_OPTIONS to the path of a local copy {README_FIX}"
    )
    # Given in the configuration itself (not from the variable): the key is named.
    monkeypatch.setenv("NER_ELMO_ELMO_OPTIONS", options)
    assert elmo_error(options_file=missing, weight_file=weights) == (
        f"cannot open ELMo options file '{missing}': no such file. Set options_file to the path of a local copy"
    )
    assert elmo_error(options_file=str(tmp_path), weight_file=weights) == (
        f"cannot open ELMo options file '{tmp_path}': a directory, not a file. "
        "Set options_file to the path of a local copy"
    )


def test_unreachable_elmo_url_fails_at_once(elmo_files, monkeypatch, cache_dir):
    options, _ = elmo_files
    monkeypatch.setenv("NER_ELMO_ELMO_WEIGHTS", UNREACHABLE)
    start = time.perf_counter()
    message = elmo_error(options_file=options, weight_file=UNREACHABLE)
    elapsed = time.perf_counter() - start
    assert message == (
        f"cannot open ELMo weights file '{UNREACHABLE}': cannot connect to 127.0.0.1:9 (Connection refused). "
        f"Set NER_ELMO_ELMO_WEIGHTS to the path of a local copy {README_FIX}"
    )
    # cached_path alone retries for 30 s before it gives up.
    assert elapsed < 5


def test_unreachable_glove_url_and_missing_glove_file(tmp_path, monkeypatch, cache_dir):
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["the", "paris"], "tokens")

    def glove_error(pretrained_file):
        params = Params({"type": "ner_embedding", "embedding_dim": 50, "pretrained_file": pretrained_file})
        with pytest.raises(ConfigurationError) as error:
            TokenEmbedder.from_params(params, vocab=vocab)
        return error.value.message

    url = "http://127.0.0.1:9/glove.6B.50d.txt.gz"
    monkeypatch.setenv("NER_ELMO_GLOVE", url)
    assert glove_error(url) == (
        f"cannot open pretrained embeddings file '{url}': cannot connect to 127.0.0.1:9 (Connection refused). "
        f"Set NER_ELMO_GLOVE to the path of a local copy {README_FIX}"
    )
    missing = str(tmp_path / "glove.txt")
    monkeypatch.setenv("NER_ELMO_GLOVE", missing)
    assert glove_error(missing) == (
        f"cannot open pretrained embeddings file '{missing}': no such file. "
        f"Set NER_ELMO_GLOVE to the path of a local copy {README_FIX}"
    )
    # An archive member: the archive is what is fetched.
    assert glove_error(f"({url})#glove.txt") == (
        f"cannot open pretrained embeddings file '{url}': cannot connect to 127.0.0.1:9 (Connection refused). "
        "Set pretrained_file to the path of a local copy"
    )


def test_urls_are_downloaded_then_used_offline(elmo_files, fixtures_dir, server, cache_dir, caplog):
    options, weights = elmo_files
    shutil.copy(options, server.directory / "options.json")
    shutil.copy(weights, server.directory / "weights.hdf5")
    shutil.copy(fixtures_dir / "glove" / "tiny.50d.txt", server.directory / "glove.txt")
    urls = {"options_file": server.url + "options.json", "weight_file": server.url + "weights.hdf5"}

    # The fast biLM opens local paths only: the embedder hands it the downloaded copies.
    online = NerElmoTokenEmbedder(implementation="fast", **urls)
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["the"], "tokens")
    glove = NerEmbedding(50, pretrained_file=server.url + "glove.txt", vocab=vocab)
    assert glove._pretrained_file.startswith(str(cache_dir))
    downloads = [path for path in cache_dir.iterdir() if path.suffix not in (".json", ".lock")]
    assert len(downloads) == 3
    assert elmo_error(options_file=server.url + "missing.json", weight_file=weights) == (
        f"cannot open ELMo options file '{server.url}missing.json': not found (HTTP 404). "
        "Set options_file to the path of a local copy"
    )

    server.stop()
    start = time.perf_counter()
    offline = NerElmoTokenEmbedder(implementation="fast", **urls)
    assert time.perf_counter() - start < 5
    assert "using the copy cached at" in caplog.text
    for a, b in zip(online.state_dict().values(), offline.state_dict().values()):
        assert a.equal(b)
