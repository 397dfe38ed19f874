"""
`allennlp ner-report` and the error analysis behind it: confusion counts, error kinds, the
report files on a hand-made corpus, and the command on a tiny trained archive.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ner_elmo.reporting.error_analysis import (
    MISSED,
    SPURIOUS,
    EntitySpan,
    entity_confusion,
    entity_errors,
    entity_spans,
    format_errors,
    sentence_errors,
)
from tiny_corpus import TINY_SENTENCES, tiny_config, write_conll

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory):
    """Trains the tiny tagger once; returns (archive path, dev data path)."""
    from allennlp.commands.train import train_model
    from allennlp.common import Params

    root = tmp_path_factory.mktemp("ner_report_run")
    train = write_conll(root / "train.txt", TINY_SENTENCES)
    dev = write_conll(root / "dev.txt", TINY_SENTENCES[::-1])
    serialization_dir = root / "run"
    train_model(Params(tiny_config(train, dev)), serialization_dir, file_friendly_logging=True)
    return serialization_dir / "model.tar.gz", dev


# --- entity spans, confusion and errors ---------------------------------------------------


def test_entity_spans_follow_conlleval_chunking_in_every_scheme():
    assert entity_spans(["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]) == [
        EntitySpan(0, 2, "PER"), EntitySpan(3, 4, "LOC"), EntitySpan(4, 5, "LOC")
    ]
    assert entity_spans(["B-PER", "L-PER", "U-LOC", "O", "U-ORG"], "BIOUL") == [
        EntitySpan(0, 2, "PER"), EntitySpan(2, 3, "LOC"), EntitySpan(4, 5, "ORG")
    ]
    assert entity_spans(["S-PER", "B-LOC", "E-LOC", "S-LOC"], "BIOES") == [
        EntitySpan(0, 1, "PER"), EntitySpan(1, 3, "LOC"), EntitySpan(3, 4, "LOC")
    ]
    # conlleval starts a chunk at an I- of a new type and at an I- after O.
    assert entity_spans(["B-PER", "I-LOC", "O", "I-ORG"]) == [
        EntitySpan(0, 1, "PER"), EntitySpan(1, 2, "LOC"), EntitySpan(3, 4, "ORG")
    ]


# Well-formed and ill-formed sequences: spans, confusion margins and conlleval must agree.
AGREEMENT_CASES = [
    (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O", "O", "I-LOC"], None),
    (["I-ORG", "I-ORG", "B-ORG", "O"], ["I-ORG", "B-ORG", "I-ORG", "I-PER"], None),
    (["B-MISC", "I-MISC", "I-MISC"], ["I-MISC", "B-LOC", "I-MISC"], None),
    (["U-PER", "B-ORG", "I-ORG", "L-ORG"], ["B-PER", "L-PER", "U-ORG", "L-ORG"], "BIOUL"),
    (["O", "U-LOC", "O", "U-LOC"], ["L-LOC", "I-LOC", "U-LOC", "B-LOC"], "BIOUL"),
]


@pytest.mark.parametrize("gold, pred, encoding", AGREEMENT_CASES)
def test_confusion_counts_equal_conlleval_counts(gold, pred, encoding):
    from ner_elmo.scoring.conlleval import evaluate

    counts = evaluate([gold, pred, gold], [pred, gold, gold], label_encoding=encoding).counts
    confusion = entity_confusion([gold, pred, gold], [pred, gold, gold], encoding)
    for label in confusion.labels:
        support = sum(confusion.count(label, c) for c in confusion.columns)
        found = sum(confusion.count(r, label) for r in confusion.rows)
        assert support == counts.found_correct.get(label, 0), label
        assert found == counts.found_guessed.get(label, 0), label
        assert confusion.count(label, label) == counts.correct_chunks.get(label, 0), label


GOLD = [
    ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"],
    ["B-ORG", "I-ORG", "I-ORG", "O", "B-MISC"],
    ["O", "O", "B-PER"],
]
PRED = [
    # PER correct, LOC predicted ORG, ORG missed
    ["B-PER", "I-PER", "O", "B-ORG", "O", "O"],
    # ORG cut short (boundary), MISC correct
    ["B-ORG", "I-ORG", "O", "O", "B-MISC"],
    # spurious LOC, PER correct
    ["B-LOC", "O", "B-PER"],
]
TOKENS = [
    ["Anna", "Berg", "saw", "Porto", "with", "Lumo"],
    ["Nordvik", "Bank", "Group", "hires", "Danes"],
    ["Riga", "welcomed", "Omar"],
]


def test_confusion_counts_matched_missed_and_spurious_entities():
    confusion = entity_confusion(GOLD, PRED)
    assert confusion.labels == ["LOC", "MISC", "ORG", "PER"]
    assert confusion.rows == ["LOC", "MISC", "ORG", "PER", SPURIOUS]
    assert confusion.columns == ["LOC", "MISC", "ORG", "PER", MISSED]
    assert confusion.to_dict() == {
        "LOC": {"LOC": 0, "MISC": 0, "ORG": 1, "PER": 0, MISSED: 0},
        "MISC": {"LOC": 0, "MISC": 1, "ORG": 0, "PER": 0, MISSED: 0},
        # the missed ORG and the ORG predicted with wrong boundaries
        "ORG": {"LOC": 0, "MISC": 0, "ORG": 0, "PER": 0, MISSED: 2},
        "PER": {"LOC": 0, "MISC": 0, "ORG": 0, "PER": 2, MISSED: 0},
        # the cut-short ORG and the invented LOC
        SPURIOUS: {"LOC": 1, "MISC": 0, "ORG": 1, "PER": 0, MISSED: 0},
    }
    assert confusion.csv_rows()[0] == ["gold\\predicted", "LOC", "MISC", "ORG", "PER", MISSED]
    assert confusion.csv_rows()[3] == ["ORG", 0, 0, 0, 0, 2]


def test_confusion_margins_are_conlleval_counts():
    confusion = entity_confusion(GOLD, PRED)
    gold_counts = {"LOC": 1, "MISC": 1, "ORG": 2, "PER": 2}
    found_counts = {"LOC": 1, "MISC": 1, "ORG": 2, "PER": 2}
    for label in confusion.labels:
        assert sum(confusion.count(label, c) for c in confusion.columns) == gold_counts[label]
        assert sum(confusion.count(r, label) for r in confusion.rows) == found_counts[label]
    assert sum(confusion.count(t, t) for t in confusion.labels) == 3


def test_every_wrong_entity_appears_in_exactly_one_error():
    errors = entity_errors(GOLD, PRED)
    assert [(e.kind, e.sentence, e.gold, e.pred) for e in errors] == [
        ("type", 0, EntitySpan(3, 4, "LOC"), EntitySpan(3, 4, "ORG")),
        ("missed", 0, EntitySpan(5, 6, "ORG"), None),
        ("boundary", 1, EntitySpan(0, 3, "ORG"), EntitySpan(0, 2, "ORG")),
        ("spurious", 2, None, EntitySpan(0, 1, "LOC")),
    ]


def test_overlapping_prediction_pairs_once_and_the_rest_is_spurious():
    # One gold entity, two predictions inside it: one boundary error, one spurious.
    errors = sentence_errors(["B-ORG", "I-ORG", "I-ORG"], ["B-ORG", "B-PER", "I-PER"], sentence=4)
    assert [(e.kind, e.gold, e.pred) for e in errors] == [
        ("boundary", EntitySpan(0, 3, "ORG"), EntitySpan(0, 1, "ORG")),
        ("spurious", None, EntitySpan(1, 3, "PER")),
    ]
    assert all(e.sentence == 4 for e in errors)


def test_errors_text_shows_each_sentence_with_gold_and_predicted_entities():
    text = format_errors(TOKENS, GOLD, PRED)
    lines = text.splitlines()
    assert lines[0] == (
        "4 entity errors in 3 of 3 sentences: 1 type, 1 boundary, 1 missed, 1 spurious"
    )
    block = text.split("## sentence 1\n")[1].split("\n\n")[0].splitlines()
    assert block == [
        "text: Anna Berg saw Porto with Lumo",
        "gold: [Anna Berg]PER saw [Porto]LOC with [Lumo]ORG",
        "pred: [Anna Berg]PER saw [Porto]ORG with Lumo",
        '  type      gold "Porto" LOC (tokens 3-4)  |  pred "Porto" ORG (tokens 3-4)',
        '  missed    gold "Lumo" ORG (tokens 5-6)  |  pred -',
    ]
    assert '  boundary  gold "Nordvik Bank Group" ORG (tokens 0-3)  |  pred "Nordvik Bank" ORG' in text
    assert "## sentence 3\n" in text


def test_misaligned_sentences_are_refused_with_the_sentence_number():
    with pytest.raises(ValueError, match="sentence 2: 5 gold tags but 4 predicted tags"):
        entity_confusion(GOLD, [PRED[0], PRED[1][:4], PRED[2]])


# --- report files ------------------------------------------------------------------------


def read_csv(path: Path):
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_report_files_on_a_hand_made_corpus(tmp_path):
    from ner_elmo.reporting.report_files import write_ner_report
    from ner_elmo.scoring.conlleval import evaluate

    metrics = write_ner_report(tmp_path, TOKENS, GOLD, PRED, model_metrics={"accuracy": 0.5})
    for name in ("conlleval.txt", "predictions.conll", "seqeval_report.txt", "token_report.txt", "per_type.csv",
                 "confusion.csv", "confusion.png", "errors.txt", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 0, name

    rows = {row["type"]: row for row in read_csv(tmp_path / "per_type.csv")}
    assert list(rows) == ["LOC", "MISC", "ORG", "PER", "overall"]
    assert {k: rows["ORG"][k] for k in ("support", "found", "correct")} == {
        "support": "2", "found": "2", "correct": "0"
    }
    assert float(rows["PER"]["f1"]) == 1.0
    # 3 correct of 6 gold and 6 predicted
    assert float(rows["overall"]["precision"]) == pytest.approx(0.5)
    assert float(rows["overall"]["recall"]) == pytest.approx(0.5)

    # The per-type CSV agrees with the conlleval scorer, whose report is the conlleval.txt.
    result = evaluate(GOLD, PRED)
    assert (tmp_path / "conlleval.txt").read_text().strip() == result.to_text().strip()
    assert metrics["conlleval"] == json.loads(json.dumps(result.to_dict()))
    assert metrics["counts"] == {
        "sentences": 3, "tokens": 14, "gold_entities": 6, "predicted_entities": 6,
        "correct_entities": 3,
    }
    assert metrics["errors"] == {"type": 1, "boundary": 1, "missed": 1, "spurious": 1}
    assert metrics["model_metrics"] == {"accuracy": 0.5}
    assert json.loads((tmp_path / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    with (tmp_path / "confusion.csv").open(newline="") as file:
        confusion_rows = list(csv.reader(file))
    assert confusion_rows[-1] == [SPURIOUS, "1", "0", "1", "0", "0"]
    report = (tmp_path / "seqeval_report.txt").read_text()
    assert "default mode" in report and "strict mode" in report


def test_part_of_speech_tags_get_a_token_report_not_a_crash(tmp_path):
    # A tagger without entities (gmb_pos_glove_char): no spans to score, token accuracy and the
    # per-tag token report are what the user reads.
    from ner_elmo.reporting.report_files import format_summary, write_ner_report

    tokens = [["The", "dog", "runs"], ["It", "sleeps"]]
    gold = [["DT", "NN", "VBZ"], ["PRP", "VBZ"]]
    predicted = [["DT", "NN", "NNS"], ["PRP", "VBZ"]]
    metrics = write_ner_report(tmp_path, tokens, gold, predicted)
    assert metrics["conlleval"]["overall"]["token_accuracy"] == pytest.approx(80.0)
    assert metrics["counts"]["gold_entities"] == metrics["counts"]["predicted_entities"] == 0
    assert metrics["per_type"] == {"overall": {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                               "support": 0, "found": 0, "correct": 0}}
    assert metrics["token_report"]["VBZ"]["recall"] == pytest.approx(0.5)
    assert (tmp_path / "predictions.conll").read_text().splitlines()[:3] == ["The DT DT", "dog NN NN", "runs VBZ NNS"]
    assert "token accuracy 80.00" in format_summary(metrics, tmp_path)


@pytest.mark.parametrize("encoding", ["BIO", "BIOUL"])
def test_predictions_conll_is_what_conlleval_reads(tmp_path, encoding):
    # `token gold predicted` lines: conlleval (the Perl script, or ours on its format) prints the
    # report's conlleval.txt from them; BIOUL tags are written as the BIO tags conlleval reads.
    from ner_elmo.data.tag_schemes import convert
    from ner_elmo.reporting.report_files import write_ner_report
    from ner_elmo.scoring.conlleval import evaluate_lines

    gold = [convert(tags, "BIO", encoding) for tags in GOLD]
    predicted = [convert(tags, "BIO", encoding) for tags in PRED]
    write_ner_report(tmp_path, TOKENS, gold, predicted, label_encoding=encoding)
    lines = (tmp_path / "predictions.conll").read_text(encoding="utf-8").splitlines()
    assert lines[:7] == ["Anna B-PER B-PER", "Berg I-PER I-PER", "saw O O", "Porto B-LOC B-ORG", "with O O",
                         "Lumo B-ORG O", ""]
    assert len(lines) == 14 + 3
    rescored = evaluate_lines(line + "\n" for line in lines)
    assert rescored.to_text().strip() == (tmp_path / "conlleval.txt").read_text().strip()


def test_bioul_tags_score_like_their_bio_equivalent(tmp_path):
    from ner_elmo.reporting.report_files import write_ner_report

    gold = [["U-PER", "O", "B-ORG", "L-ORG"]]
    pred = [["U-PER", "O", "U-ORG", "O"]]
    metrics = write_ner_report(tmp_path, [["Omar", "joined", "Lumo", "Foods"]], gold, pred)
    assert metrics["per_type"]["PER"]["correct"] == 1
    assert metrics["per_type"]["ORG"]["correct"] == 0
    assert metrics["conlleval"] == json.loads(
        json.dumps(
            write_ner_report(
                tmp_path / "bio", [["Omar", "joined", "Lumo", "Foods"]],
                [["B-PER", "O", "B-ORG", "I-ORG"]], [["B-PER", "O", "B-ORG", "O"]],
            )["conlleval"]
        )
    )


def test_the_scheme_is_inferred_by_tag_schemes_detection():
    from ner_elmo.reporting.report_files import infer_label_encoding

    assert infer_label_encoding([["U-PER", "O"], ["B-ORG", "L-ORG"]]) == "BIOUL"
    # BIOES without a single-token entity: E- alone says BIOES (conlleval would read E- as IOE's
    # end and run "B-LOC E-LOC B-LOC E-LOC" together as one chunk).
    assert infer_label_encoding([["B-LOC", "E-LOC", "B-LOC", "E-LOC"]]) == "BIOES"
    assert infer_label_encoding([["I-PER", "O", "B-LOC"]]) is None  # IOB1: read as it is
    assert infer_label_encoding([["NNP", "VBZ"]]) is None  # not entity tags


def test_bioes_tags_without_single_token_entities_score_both_entities(tmp_path):
    from ner_elmo.reporting.report_files import write_ner_report

    gold = [["B-LOC", "E-LOC", "B-LOC", "E-LOC"]]
    pred = [["B-LOC", "E-LOC", "O", "O"]]
    metrics = write_ner_report(tmp_path, [["Oslo", "harbour", "Tallinn", "port"]], gold, pred)
    assert metrics["info"]["label_encoding"] == "BIOES"
    overall = metrics["conlleval"]["overall"]
    assert (overall["found_correct"], overall["found_guessed"], overall["correct_chunks"]) == (2, 1, 1)


# --- the command on a trained archive ------------------------------------------------------


def command_parser():
    from ner_elmo.commands.ner_report import NerReport

    parser = argparse.ArgumentParser()
    NerReport().add_subparser(parser.add_subparsers())
    return parser


def test_ner_report_on_a_trained_archive(tiny_archive, tmp_path, capsys):
    from allennlp.models.archival import load_archive

    archive_path, dev = tiny_archive
    args = command_parser().parse_args(
        ["ner-report", str(archive_path), str(dev), "--output-dir", str(tmp_path / "report"),
         "--batch-size", "3"]
    )
    metrics = args.func(args)
    out = capsys.readouterr().out
    assert "8 sentences, 60 tokens, 20 gold" in out

    report = tmp_path / "report"
    assert json.loads((report / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert metrics["counts"]["sentences"] == len(TINY_SENTENCES)
    assert metrics["counts"]["gold_entities"] == 20
    # The model's own span F1 over the same predictions equals the report's: predictions and
    # gold tags were kept with the right sentences, whatever the batch size.
    # (The taggers keep all conlleval figures but the overall F1 out of the progress bar with a
    # leading underscore.)
    model = {name.lstrip("_"): value for name, value in metrics["model_metrics"].items()}
    for entity_type, row in metrics["per_type"].items():
        assert row["f1"] == pytest.approx(model[f"f1-measure-{entity_type}"], abs=1e-6)
        assert row["f1"] == pytest.approx(model[f"conlleval-f1-{entity_type}"], abs=1e-6)
        assert row["precision"] == pytest.approx(
            model[f"conlleval-precision-{entity_type}"], abs=1e-6
        )
    # Every error is listed: the error lines add up to the unmatched entities.
    errors = metrics["errors"]
    counts = metrics["counts"]
    wrong_gold = counts["gold_entities"] - counts["correct_entities"]
    wrong_pred = counts["predicted_entities"] - counts["correct_entities"]
    assert errors["type"] + errors["boundary"] + errors["missed"] == wrong_gold
    assert errors["type"] + errors["boundary"] + errors["spurious"] == wrong_pred

    # The same report with a batch size of 1 gives the same predictions.
    again = command_parser().parse_args(
        ["ner-report", str(archive_path), str(dev), "--output-dir", str(tmp_path / "again"),
         "--batch-size", "1"]
    )
    again.func(again)
    assert (tmp_path / "again" / "errors.txt").read_text() == (report / "errors.txt").read_text()

    archive = load_archive(str(archive_path))
    assert archive.model.label_encoding == metrics["info"]["label_encoding"] == "BIOUL"


def test_gold_types_the_model_never_saw_are_reported_not_fatal(tiny_archive, tmp_path):
    from ner_elmo.commands.ner_report import ner_report_from_archive

    archive_path, _ = tiny_archive
    data = write_conll(tmp_path / "other.txt", TINY_SENTENCES[:2] + [
        [("Rita", "I-PER"), ("Vos", "I-PER"), ("won", "O"), ("the", "O"), ("Tallinn", "I-EVT"),
         ("Marathon", "I-EVT"), (".", "O")],
    ])
    metrics = ner_report_from_archive(archive_path, data, tmp_path / "report", batch_size=2)
    assert metrics["info"]["gold_tags_unknown_to_model"] == ["B-EVT", "L-EVT"]
    assert metrics["model_metrics"] == {}
    assert metrics["per_type"]["EVT"]["support"] == 1
    assert metrics["per_type"]["EVT"]["correct"] == 0
    assert metrics["counts"]["sentences"] == 3
    assert '"Tallinn Marathon" EVT' in (tmp_path / "report" / "errors.txt").read_text()


def test_dataset_reader_override_rebuilds_the_validation_reader(tiny_archive):
    from allennlp.models.archival import load_archive

    from ner_elmo.commands.ner_report import validation_reader

    archive = load_archive(str(tiny_archive[0]))
    assert validation_reader(archive).label_encoding == "BIOUL"
    overridden = validation_reader(archive, '{"label_encoding": "BIO"}')
    assert overridden.label_encoding == "BIO"
    assert overridden.coding_scheme == "IOB1"


def test_joined_sentences_are_reported_as_the_file_has_them(tiny_archive, tmp_path):
    from allennlp.models.archival import load_archive

    from ner_elmo.commands.ner_report import ner_report_from_archive, validation_reader

    archive_path, dev = tiny_archive
    reader = validation_reader(load_archive(str(archive_path)), '{"document_context_tokens": 20}')
    assert len(list(reader.read(str(dev)))) < len(TINY_SENTENCES)  # the model tags joined sentences
    plain = ner_report_from_archive(archive_path, dev, tmp_path / "plain", batch_size=2)
    joined = ner_report_from_archive(
        archive_path, dev, tmp_path / "joined", batch_size=2,
        dataset_reader_override='{"document_context_tokens": 20}',
    )
    assert plain["counts"]["sentences"] == joined["counts"]["sentences"] == len(TINY_SENTENCES)
    assert joined["counts"]["gold_entities"] == 20

    def tokens_and_gold(report):
        lines = (report / "predictions.conll").read_text().split("\n")
        return [line.rsplit(" ", 1)[0] for line in lines]

    # The same sentences, tokens and gold tags line by line (blank lines between sentences);
    # only the predictions may differ, made with the neighbouring sentences in view.
    assert tokens_and_gold(tmp_path / "joined") == tokens_and_gold(tmp_path / "plain")


@pytest.mark.slow
def test_ner_report_command_line(tiny_archive, tmp_path):
    archive_path, dev = tiny_archive
    allennlp = Path(sys.executable).parent / "allennlp"
    result = subprocess.run(
        [str(allennlp), "ner-report", str(archive_path), str(dev), "--output-dir", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ}, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "report written to" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "confusion.csv", "confusion.png", "conlleval.txt", "errors.txt", "metrics.json",
        "per_type.csv", "predictions.conll", "seqeval_report.txt", "token_report.txt",
    ]
