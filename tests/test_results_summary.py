"""
`allennlp ner-results`: the trials of a results log grouped by identity (config, config hashes,
overrides, the files' hashes, budget; old rows without hashes by config, commit, overrides and
budget, "unrecorded"), with n, mean and sample standard deviation, per-type means and flags; the
generated results page; and docs/results.md as generated from results/accuracy.jsonl.
"""
import json
import math
import sys

import pytest

from conftest import REPO_ROOT
from ner_elmo.commands import ner_accuracy as accuracy

GLOVE = "model.text_field_embedder.token_embedders.tokens.pretrained_file"
WEIGHTS = "model.text_field_embedder.token_embedders.elmo.weight_file"


def row(seed=1, dev=94.0, test=89.0, config_sha="c1", glove_sha="g1", weights_sha="w1", overrides=None, **fields):
    """A row as ner-accuracy writes it, identity included."""
    return {
        "config": "training_config/conll2003_elmo.jsonnet", "commit": "aaaaaaaaaaaa", "seed": seed,
        "epochs_budget": 20, "epochs_run": 20, "completed": True, "best_epoch": 19, "wall_minutes": 10.0,
        "dev_f1": dev, "test_f1": test, "test_f1_per_type": {"LOC": test + 2, "PER": test + 5},
        "test_span_f1": test, "dev_token_accuracy": 99.0, "test_token_accuracy": 98.0,
        "overrides": overrides or {},
        "config_sha256": config_sha, "resolved_config_sha256": "r-" + config_sha,
        "files": {GLOVE: {"name": "glove.6B.50d.txt.gz", "sha256": glove_sha, "bytes": 1},
                  WEIGHTS: {"name": "lm_weights.hdf5", "sha256": weights_sha, "bytes": 1}},
        "environment": {"NER_ELMO_ELMO_DIM": "256"},
        "vocabulary_from": ["train"], "vocabulary_saw_evaluation_data": False, "run": f"runs/x-s{seed}",
        "date": "2026-12-08", **fields,
    }


def old_row(seed=1, commit="bbbbbbbbbbbb", test=89.0, **fields):
    """A row from before the runner recorded identity (and, older still, the vocabulary)."""
    new = row(seed=seed, test=test, commit=commit, **fields)
    for field in ("config_sha256", "resolved_config_sha256", "files", "environment", "vocabulary_from",
                  "vocabulary_saw_evaluation_data"):
        if field not in fields:
            new.pop(field)
    return new


def test_one_identity_is_one_group_with_n_mean_and_sample_sd():
    tests, devs = [89.0, 90.0, 91.5], [94.0, 94.5, 95.5]
    (group,) = accuracy.summarize([row(seed, dev, test) for seed, dev, test in zip((1, 2, 3), devs, tests)])
    assert group.recorded and group.n == 3 and group.seeds == [1, 2, 3]
    mean = sum(tests) / 3
    assert group.test[0] == pytest.approx(mean, abs=1e-12)
    assert group.test[1] == pytest.approx(math.sqrt(sum((t - mean) ** 2 for t in tests) / 2), abs=1e-12)  # n - 1
    assert group.dev[1] == pytest.approx(math.sqrt(sum((d - sum(devs) / 3) ** 2 for d in devs) / 2), abs=1e-12)
    assert group.per_type == pytest.approx({"LOC": mean + 2, "PER": mean + 5})
    assert group.wall_minutes == 10.0 and group.epochs == "20 (best 20, 20, 20)"
    assert group.flags == [] and len(group.identity) == 12
    # One trial: a mean, no deviation.
    (single,) = accuracy.summarize([row()])
    assert single.test == (89.0, None)


def test_another_config_hash_embedding_hash_override_or_budget_is_another_group():
    rows = [row(1), row(2, config_sha="c2"), row(3, glove_sha="g2"), row(4, weights_sha="w2"),
            row(5, overrides={"model.encoder.num_layers": 1}), row(6, epochs_budget=50), row(7)]
    groups = accuracy.summarize(rows)
    assert [group.seeds for group in groups] == [[1, 7], [2], [3], [4], [5], [6]]
    assert len({group.identity for group in groups}) == 6
    # The same overrides written in another order are the same overrides.
    a, b = row(1, overrides={"x": 1, "y": 2}), row(2, overrides={"y": 2, "x": 1})
    assert len(accuracy.summarize([a, b])) == 1
    # A row's commit is not part of a recorded identity; the group lists them.
    (group,) = accuracy.summarize([row(1), row(2, commit="cccccccccccc")])
    assert group.commits == ["aaaaaaaaaaaa", "cccccccccccc"]


def test_rows_without_hashes_are_grouped_by_config_commit_overrides_and_budget_as_unrecorded():
    rows = [old_row(1), old_row(2), old_row(3, commit="dddddddddddd"),
            old_row(4, overrides={"model.encoder.num_layers": 1}), row(5)]
    groups = accuracy.summarize(rows)
    assert [(group.identity, group.seeds) for group in groups] == [
        ("unrecorded", [1, 2]), ("unrecorded", [3]), ("unrecorded", [4]), (groups[3].identity, [5])]
    assert groups[3].recorded and groups[3].identity != "unrecorded"
    assert "vocabulary not recorded" in groups[0].flags


def test_flags_evaluation_vocabulary_stopped_runs_token_accuracy_and_dirty_commits():
    (group,) = accuracy.summarize([row(1, vocabulary_saw_evaluation_data=True, completed=False, commit="a+dirty")])
    assert group.flags == ["vocabulary from dev/test data", "1 of 1 stopped before the end", "uncommitted edits (+dirty)"]
    # A part-of-speech tagger (no entities): token accuracy is its score, and the flag says so.
    (pos,) = accuracy.summarize([row(1, test_span_f1=None, dev_f1=0.0, test_f1=0.0, test_f1_per_type={})])
    assert (pos.dev, pos.test) == ((99.0, None), (98.0, None))
    assert "token accuracy, not F1" in pos.flags
    (unhashed,) = accuracy.summarize([row(1, files={WEIGHTS: {"name": "w.hdf5", "sha256": None, "error": "gone"}})])
    assert "a file not hashed" in unhashed.flags


def test_the_page_says_it_is_generated_and_holds_groups_and_per_type_tables():
    rows = [row(1, test=89.0), row(2, test=90.0), old_row(3),
            {**old_row(4), "config": "training_config/gmb_glove_char.jsonnet", "test_f1_per_type": {"geo": 88.0}}]
    page = accuracy.results_markdown(rows)
    lines = page.splitlines()
    assert lines[0] == "# Results"
    assert "Generated by `allennlp ner-results" in page and "do not edit it by hand" in page
    groups = accuracy.summarize(rows)
    recorded = next(group for group in groups if group.recorded)
    assert any(line.startswith(f"| {recorded.number} | `conll2003_elmo.jsonnet` |  | `{recorded.identity}` | 20 (best 20, 20) "
                               "| 2 | 1, 2 | 94.00 ± 0.00 | 89.50 ± 0.71 |") for line in lines)
    assert sum(1 for line in lines if "| unrecorded |" in line) == 2
    assert "## Test F1 per type: LOC, PER" in page and "## Test F1 per type: geo" in page
    assert f"| {recorded.number} | `conll2003_elmo.jsonnet` |  | 2 | 91.50 | 94.50 |" in lines
    # The identities: short hashes and file names, never a directory.
    assert f"| `{recorded.identity}` | `c1` | `r-c1` |" in page and "`lm_weights.hdf5`" in page
    assert "ELMO_DIM=256" in page


def test_the_rows_table_flags_rows_whose_vocabulary_saw_evaluation_data():
    rows = [{**old_row(1), "vocabulary_saw_evaluation_data": flag} for flag in (True, False)] + [old_row(1)]
    lines = accuracy.rows_table(rows).splitlines()[-3:]
    assert lines[0].startswith("| `conll2003_elmo.jsonnet` **(vocabulary from dev/test too)** |")
    assert lines[1].startswith("| `conll2003_elmo.jsonnet` | 1 |")
    assert lines[2].startswith("| `conll2003_elmo.jsonnet` (vocabulary not recorded) |")


def test_allennlp_ner_results_writes_the_page(tmp_path, monkeypatch, capsys):
    """The command as `allennlp` runs it: its parser, through the registered subcommands."""
    from allennlp.commands import main

    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in [row(1), row(2), old_row(3)]) + "\n")
    page = tmp_path / "docs" / "results.md"
    monkeypatch.setattr(sys, "argv", ["allennlp", "ner-results", "--results", str(results), "--markdown", str(page)])
    main(prog="allennlp")
    assert page.read_text() == accuracy.results_markdown(accuracy.read_rows(results), "results.jsonl", "results.md")
    assert str(tmp_path) not in page.read_text()  # no machine paths
    assert "3 rows in 2 groups written to" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["allennlp", "ner-results", "--results", str(results)])
    main(prog="allennlp")
    assert capsys.readouterr().out.startswith("3 rows in 2 groups.")


def test_docs_results_md_is_generated_from_the_results_log():
    """docs/results.md is `allennlp ner-results --markdown docs/results.md`'s output: regenerate it after
    appending trials to results/accuracy.jsonl."""
    rows = accuracy.read_rows(REPO_ROOT / "results" / "accuracy.jsonl")
    page = (REPO_ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    assert page == accuracy.results_markdown(rows, "results/accuracy.jsonl", "docs/results.md")
