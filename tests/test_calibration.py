import json
import math

import pytest
from allennlp.commands.train import train_model
from allennlp.common import Params

import ner_elmo
from config_env import CONFIGS, FIXTURE_ENV, FIXTURES
from ner_elmo.commands.ner_calibrate import calibrate, format_results
from ner_elmo.commands.ner_export import export_bundle
from ner_elmo.scoring.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    precision_recall_at,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_expected_calibration_error_by_hand():
    # Bin [0.9, 1.0): scores 0.95, 0.95, correct 1 of 2 -> |0.5 - 0.95| = 0.45, weight 2/4;
    # bin [0.2, 0.3): scores 0.25, 0.25, correct 0 of 2 -> 0.25, weight 2/4.
    ece, table = expected_calibration_error([0.95, 0.95, 0.25, 0.25], [True, False, False, False])
    assert ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.25)
    assert [(row["low"], row["count"]) for row in table] == [(0.2, 2), (0.9, 2)]
    assert expected_calibration_error([1.0], [True])[0] == 0.0  # a score of 1 falls in the last bin


def test_precision_and_recall_at_thresholds():
    rows = precision_recall_at([0.99, 0.85, 0.6, 0.3], [True, True, False, True], gold_count=5, thresholds=[0.5, 0.9])
    assert rows[0] == {"threshold": 0.5, "kept": 3, "precision": pytest.approx(200 / 3), "recall": 40.0}
    assert rows[1] == {"threshold": 0.9, "kept": 1, "precision": 100.0, "recall": 20.0}


def test_the_fitted_temperature_minimises_the_likelihood():
    # Scores are sigmoid(4 / T) for every entity and 3 of 4 are correct: the best score is 0.75,
    # reached at T = 4 / logit(0.75).
    def outcomes(temperature):
        score = 1 / (1 + math.exp(-4 / temperature))
        return [score] * 4, [True, True, True, False]

    best = fit_temperature(outcomes, low=0.5, high=8.0, steps=40)
    assert best == pytest.approx(4 / math.log(3), rel=1e-4)
    assert negative_log_likelihood(*outcomes(best)) < negative_log_likelihood(*outcomes(1.0))


def test_the_calibration_runner_end_to_end_on_the_fixtures(tmp_path):
    params = Params.from_file(
        str(CONFIGS / "conll2003_glove_char.jsonnet"), params_overrides=json.dumps({"trainer.num_epochs": 3}), ext_vars=FIXTURE_ENV
    )
    train_model(params, tmp_path / "run")
    bundle = export_bundle(str(tmp_path / "run" / "model.tar.gz"), str(tmp_path / "bundle"))
    dev = str(FIXTURES / "conll" / "dev.iob1.txt")
    results = calibrate(bundle, dev, test_file=dev, plot=tmp_path / "reliability.png", fit=True, save=True)
    before, after = results["before"]["dev"], results["after"]["dev"]
    assert before["entities"] > 0 and before["gold_entities"] > 0
    assert sum(row["count"] for row in before["bins"]) == before["entities"]
    assert after["nll"] <= before["nll"] + 1e-9
    assert (tmp_path / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The temperature is stored in the bundle and used by every later load; tags never change.
    config = json.loads((bundle / "config.json").read_text())
    assert config["scores"]["temperature"] == pytest.approx(results["temperature"])
    text = " ".join(line.split()[0] for line in (FIXTURES / "conll" / "dev.iob1.txt").read_text().splitlines()[:60] if line.strip())
    cooled, plain = ner_elmo.load(bundle), ner_elmo.load(bundle, temperature=1.0)
    assert cooled.temperature == pytest.approx(results["temperature"])
    assert [e[:4] for e in cooled(text)] == [e[:4] for e in plain(text)]
    assert "ECE" in format_results(results)
