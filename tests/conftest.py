import logging
import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

import ner_elmo.plugin  # noqa: F401  (registers every component, as `allennlp` does through .allennlp_plugins)

# Property tests: local runs explore new examples every time; CI (HYPOTHESIS_PROFILE=ci, set by
# .ci/run) draws the same examples on every run, so a red CI is always reproducible.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "fixtures"
SHARED = REPO_ROOT.parent / "shared"


# The root logger's level when the session starts: every test leaves it so, even one whose
# module-scoped fixture trained a model (allennlp's training sets INFO before the test starts).
_SESSION_LOG_LEVEL = logging.getLogger().level


@pytest.fixture(autouse=True)
def _no_log_files_left_behind():
    """allennlp's training points the root logger and its tqdm logger at files in its
    serialization directory (`out.log`); when a test's temporary directory is gone, a later
    test's logging would fail to reopen them. After each test, the file handlers of both loggers
    are closed and removed, whoever added them (a module-scoped fixture's training too), and the
    root logger gets its session level back."""
    yield
    from allennlp.common.tqdm import logger as tqdm_logger

    for logger in (logging.getLogger(), tqdm_logger):
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)
                handler.close()
    logging.getLogger().setLevel(_SESSION_LOG_LEVEL)


@pytest.fixture
def fixture_env(monkeypatch):
    """The training configs' variables pointed at the bundled fixtures (what `make demo` sets)."""
    from config_env import FIXTURE_ENV

    for name, value in FIXTURE_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` beside the checkout: data that is never committed. Skips when absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (a user's fresh clone): corpus-sized check skipped")
    return SHARED


@pytest.fixture(scope="module")
def one_torch_thread():
    """
    Tiny tensors gain nothing from threads, and their synchronisation is slow on a busy machine.
    A module opts in with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def elmo_files():
    """(options.json, lm_weights.hdf5) of the committed tiny ELMo fixture (made by weights_io)."""
    return str(FIXTURES / "elmo" / "options.json"), str(FIXTURES / "elmo" / "lm_weights.hdf5")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """The tiny lexicon tagger (`tiny_tagger`) exported as a bundle: it tags known words only."""
    from tiny_tagger import write_archive

    from ner_elmo.commands.ner_export import export_bundle

    root = tmp_path_factory.mktemp("tiny_bundle")
    (root / "run").mkdir()
    return export_bundle(str(write_archive(root / "run")), str(root / "bundle"))
