import json

import pytest

from ner_elmo.scoring.reports import seqeval_report, token_report

# An entity opened by I- (no B-): lenient readers (conlleval, seqeval's default) accept it,
# strict IOB2 does not.
GOLD = [["B-PER", "I-PER", "O", "B-LOC"]]
I_START = [["I-PER", "I-PER", "O", "B-LOC"]]


def test_default_mode_counts_an_i_start_as_an_entity():
    report = seqeval_report(GOLD, I_START)
    assert report.scores["micro avg"] == {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 2}
    assert report.text == (
        "              precision    recall  f1-score   support\n"
        "\n"
        "         LOC     1.0000    1.0000    1.0000         1\n"
        "         PER     1.0000    1.0000    1.0000         1\n"
        "\n"
        "   micro avg     1.0000    1.0000    1.0000         2\n"
        "   macro avg     1.0000    1.0000    1.0000         2\n"
        "weighted avg     1.0000    1.0000    1.0000         2\n"
    )


def test_strict_mode_drops_the_ill_formed_entity():
    report = seqeval_report(GOLD, I_START, mode="strict", scheme="BIO")
    assert report.scores["PER"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1}
    micro = report.scores["micro avg"]
    assert (micro["precision"], micro["recall"]) == (1.0, 0.5)
    assert micro["f1-score"] == pytest.approx(2 / 3)


def test_bioul_in_default_mode_reads_u_and_l():
    gold = [["U-PER", "U-PER", "B-ORG", "L-ORG"]]
    predicted = [["U-PER", "B-PER", "L-PER", "U-ORG"]]
    # gold: PER PER ORG(2-3); predicted: PER PER(1-2) ORG(3): one entity right
    for mode in ("default", "strict"):
        micro = seqeval_report(gold, predicted, mode=mode, scheme="BIOUL").scores["micro avg"]
        assert (micro["precision"], micro["recall"], micro["support"]) == (1 / 3, 1 / 3, 3), mode


def test_token_report_lists_every_tag_by_type_then_prefix():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    predicted = [["B-PER", "O", "O", "B-ORG"]]
    report = token_report(gold, predicted)
    assert list(report.scores) == ["B-LOC", "B-ORG", "B-PER", "I-PER", "micro avg", "macro avg", "weighted avg"]
    assert report.scores["B-PER"] == {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 1}
    assert report.scores["I-PER"]["recall"] == 0.0
    # micro over non-O tokens: 2 predicted, 3 gold, 1 right
    micro = report.scores["micro avg"]
    assert (micro["precision"], micro["recall"], micro["f1-score"]) == pytest.approx((0.5, 1 / 3, 0.4))
    assert report.scores["macro avg"]["precision"] == 0.25
    assert report.scores["weighted avg"]["recall"] == pytest.approx(1 / 3)
    rows = [line.split()[0] for line in report.text.splitlines()[2:6]]
    assert rows == ["B-LOC", "B-ORG", "B-PER", "I-PER"]
    assert "   micro avg     0.5000    0.3333    0.4000         3" in report.text


def test_token_report_with_o_reports_accuracy():
    report = token_report([["B-PER", "O", "O"]], [["B-PER", "B-PER", "O"]], include_o=True)
    assert list(report.scores)[:2] == ["B-PER", "O"]
    assert report.scores["accuracy"] == pytest.approx(2 / 3)


def test_scores_are_json_ready():
    for report in (seqeval_report(GOLD, I_START), token_report(GOLD, I_START)):
        assert json.loads(json.dumps(report.scores)) == report.scores


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="sentence 0: 4 gold tags but 3 predicted tags"):
        token_report(GOLD, [["O", "O", "O"]])
    with pytest.raises(ValueError, match="1 gold sentences but 0 predicted"):
        seqeval_report(GOLD, [])
    with pytest.raises(ValueError, match='mode must be "default" or "strict"'):
        seqeval_report(GOLD, GOLD, mode="lenient")
    with pytest.raises(ValueError, match="unknown scheme 'XYZ'"):
        seqeval_report(GOLD, GOLD, mode="strict", scheme="XYZ")
    with pytest.raises(ValueError, match="contain an entity"):
        seqeval_report([["O"]], [["O"]])
    with pytest.raises(ValueError, match="all O"):
        token_report([["O"]], [["O"]])
