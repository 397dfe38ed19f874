"""
conlleval-exact scoring. Expected outputs below are what the original conlleval Perl script
(2004-01-26) prints for the same invented inputs, recorded with `perl conlleval.pl < input`;
each case says which of its documented rules the numbers follow from.
"""
import io
import json
import sys

import pytest

from ner_elmo.scoring.conlleval import (
    ConllevalAccumulator,
    ConllevalCounts,
    ConllevalFormatError,
    ConllevalResult,
    chunk_ends,
    chunk_starts,
    evaluate,
    evaluate_file,
    evaluate_lines,
    main,
    split_tag,
    to_conlleval_tags,
)


def lines_of(text: str):
    return text.splitlines(keepends=True)


SMALL_INPUT = """\
a B-PER B-PER
b I-PER O
c O O
d B-LOC B-LOC
e O O
f O B-ORG
g B-ORG I-ORG
h B-MISC B-PER

i B-PER I-PER
j O O
"""

# perl conlleval.pl < SMALL_INPUT
SMALL_PERL = """\
processed 10 tokens with 5 phrases; found: 5 phrases; correct: 2.
accuracy:  50.00%; precision:  40.00%; recall:  40.00%; FB1:  40.00
              LOC: precision: 100.00%; recall: 100.00%; FB1: 100.00  1
             MISC: precision:   0.00%; recall:   0.00%; FB1:   0.00  0
              ORG: precision:   0.00%; recall:   0.00%; FB1:   0.00  1
              PER: precision:  33.33%; recall:  50.00%; FB1:  40.00  3
"""

# perl conlleval.pl -l < SMALL_INPUT
SMALL_PERL_LATEX = """\
        & Precision &  Recall  & F$_{\\beta=1} \\\\\\hline
LOC     &  100.00\\% & 100.00\\% & 100.00 \\\\
MISC    &    0.00\\% &   0.00\\% &   0.00 \\\\
ORG     &    0.00\\% &   0.00\\% &   0.00 \\\\
PER     &   33.33\\% &  50.00\\% &  40.00 \\\\\\hline
Overall &   40.00\\% &  40.00\\% &  40.00 \\\\\\hline
"""


def test_small_case_prints_exactly_what_conlleval_prints():
    result = evaluate_lines(lines_of(SMALL_INPUT))
    assert result.to_text() == SMALL_PERL
    assert result.to_latex() == SMALL_PERL_LATEX


def test_small_case_numbers():
    result = evaluate_lines(lines_of(SMALL_INPUT))
    o = result.overall
    # gold: PER(a-b) LOC(d) ORG(g) MISC(h) PER(i); predicted: PER(a) LOC(d) ORG(f-g) PER(h) PER(i)
    # correct: LOC(d) and PER(i) -- an I- after a sentence break starts a chunk like B- does.
    assert (o.found_correct, o.found_guessed, o.correct_chunks) == (5, 5, 2)
    assert (o.tokens, o.correct_tags) == (10, 5)
    assert o.precision == o.recall == o.f1 == 40.0
    assert o.token_accuracy == 50.0
    # gold non-O tokens a b d g h i; identical tags on a and d
    assert (o.non_o_tokens, o.non_o_correct_tags) == (6, 2)
    assert o.non_o_token_accuracy == pytest.approx(100 * 2 / 6)
    assert list(result.by_type) == ["LOC", "MISC", "ORG", "PER"]
    per = result.by_type["PER"]
    assert (per.found_correct, per.found_guessed, per.correct_chunks) == (2, 3, 1)
    assert per.precision == 100 * 1 / 3 and per.recall == 50.0
    assert result.by_type["MISC"].found_guessed == 0 and result.by_type["MISC"].precision == 0.0


def test_evaluate_on_sentences_equals_the_file_form():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "O", "B-ORG", "B-MISC"], ["B-PER", "O"]]
    predicted = [["B-PER", "O", "O", "B-LOC", "O", "B-ORG", "I-ORG", "B-PER"], ["I-PER", "O"]]
    assert evaluate(gold, predicted).to_text() == SMALL_PERL


def test_to_dict_is_json_ready():
    data = json.loads(json.dumps(evaluate_lines(lines_of(SMALL_INPUT)).to_dict()))
    assert data["overall"]["f1"] == 40.0
    assert data["overall"]["tokens"] == 10
    assert data["by_type"]["PER"] == {
        "found_correct": 2,
        "found_guessed": 3,
        "correct_chunks": 1,
        "precision": 100 / 3,
        "recall": 50.0,
        "f1": 40.0,
    }


def test_iob1_b_only_separates_adjacent_chunks_of_one_type():
    # gold I-PER I-PER B-PER is two chunks (IOB1); the prediction runs them together.
    result = evaluate([["I-PER", "I-PER", "B-PER", "O"]], [["I-PER", "I-PER", "I-PER", "O"]])
    assert result.to_text() == (
        "processed 4 tokens with 2 phrases; found: 1 phrases; correct: 0.\n"
        "accuracy:  75.00%; precision:   0.00%; recall:   0.00%; FB1:   0.00\n"
        "              PER: precision:   0.00%; recall:   0.00%; FB1:   0.00  1\n"
    )


def test_an_i_tag_without_b_starts_a_chunk_and_can_be_correct():
    result = evaluate([["O", "B-PER", "I-PER"]], [["O", "I-PER", "I-PER"]])
    assert result.overall.correct_chunks == 1 and result.overall.f1 == 100.0
    assert result.overall.correct_tags == 2  # the tags themselves differ on one token


def test_a_type_change_inside_a_chunk_ends_it_and_starts_another():
    # perl: processed 3 tokens with 1 phrases; found: 2 phrases; correct: 0.
    result = evaluate([["B-PER", "I-PER", "O"]], [["B-PER", "I-LOC", "O"]])
    o = result.overall
    assert (o.found_correct, o.found_guessed, o.correct_chunks) == (1, 2, 0)
    assert list(result.by_type) == ["LOC", "PER"]
    assert result.by_type["PER"].found_guessed == 1


def test_bioul_tags_read_raw_merge_but_mapped_to_bio_score_right():
    gold = [["U-PER", "U-PER", "O"]]
    predicted = [["U-PER", "U-PER", "L-PER"]]
    # conlleval knows no U/L prefix: U-PER U-PER is one chunk (same type, no rule starts one),
    # and L-PER after O starts a chunk only through the type change. perl prints:
    assert evaluate(gold, predicted).to_text() == (
        "processed 3 tokens with 1 phrases; found: 1 phrases; correct: 0.\n"
        "accuracy:  66.67%; precision:   0.00%; recall:   0.00%; FB1:   0.00\n"
        "              PER: precision:   0.00%; recall:   0.00%; FB1:   0.00  1\n"
    )
    mapped = evaluate(gold, predicted, label_encoding="BIOUL")
    assert (mapped.overall.found_correct, mapped.overall.found_guessed, mapped.overall.correct_chunks) == (2, 2, 1)


def test_label_encoding_maps_token_by_token():
    assert to_conlleval_tags(["B-PER", "L-PER", "U-LOC", "O", "I-X"], "BIOUL") == ["B-PER", "I-PER", "B-LOC", "O", "I-X"]
    assert to_conlleval_tags(["S-PER", "E-PER"], "BIOES") == ["B-PER", "I-PER"]
    assert to_conlleval_tags(["B-A", "M-A", "E-A", "S-B"], "BMES") == ["B-A", "I-A", "I-A", "B-B"]
    assert to_conlleval_tags(["I-PER", "B-PER"], "IOB1") == ["I-PER", "B-PER"]
    assert to_conlleval_tags(["U-PER"], None) == ["U-PER"]
    with pytest.raises(ValueError, match="unknown label_encoding 'XYZ'"):
        to_conlleval_tags(["O"], "XYZ")


def test_well_formed_bioul_scores_like_its_bio_form():
    bio = [["B-PER", "I-PER", "B-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG"]]
    bioul = [["B-PER", "L-PER", "U-PER", "O", "U-LOC"], ["B-ORG", "I-ORG", "L-ORG"]]
    bio_pred = [["B-PER", "I-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "O"]]
    bioul_pred = [["B-PER", "I-PER", "L-PER", "O", "U-LOC"], ["B-ORG", "L-ORG", "O"]]
    assert evaluate(bioul, bioul_pred, "BIOUL").to_text() == evaluate(bio, bio_pred).to_text()


def test_e_prefix_rules():
    # E→E and E→I end a chunk; I→E does not; E→O ends it.  perl prints 3 / 3 / 1.
    result = evaluate_lines(lines_of("a E-PER E-PER\nb E-PER I-PER\nc I-PER E-PER\nd E-PER E-PER\ne O O\n"))
    assert result.to_text() == (
        "processed 5 tokens with 3 phrases; found: 3 phrases; correct: 1.\n"
        "accuracy:  60.00%; precision:  33.33%; recall:  33.33%; FB1:  33.33\n"
        "              PER: precision:  33.33%; recall:  33.33%; FB1:  33.33  3\n"
    )


def test_chunk_rules_directly():
    assert chunk_starts("O", "I", "", "PER") and chunk_starts("I", "B", "PER", "PER")
    assert not chunk_starts("B", "I", "PER", "PER")
    assert chunk_starts("U", "U", "PER", "LOC") and not chunk_starts("U", "U", "PER", "PER")
    assert chunk_ends("E", "I", "PER", "PER") and not chunk_ends("I", "E", "PER", "PER")
    assert chunk_ends("[", "O", "NP", "NP") and chunk_starts("O", "]", "", "")
    # "." is, like O, never part of a type change
    assert not chunk_ends(".", "O", "X", "") and not chunk_starts("B", ".", "X", "")


def test_a_blank_line_ends_chunks():
    # B-PER, break, I-PER: two chunks, both right (perl: 2 phrases, found 2, correct 2)
    result = evaluate([["B-PER"], ["I-PER"]], [["B-PER"], ["I-PER"]])
    assert (result.overall.found_correct, result.overall.correct_chunks) == (2, 2)


def test_a_chunk_ending_in_a_dot_tag_runs_over_the_sentence_break():
    # ".-X" neither ends nor starts a chunk, and the break (an O O token) after "." ends nothing.
    # perl: processed 3 tokens with 2 phrases; found: 1 phrases; correct: 0.
    result = evaluate_lines(lines_of("a B-X B-X\nb .-X .-X\n\nc I-X O\n"))
    o = result.overall
    assert (o.tokens, o.found_correct, o.found_guessed, o.correct_chunks) == (3, 2, 1, 0)


def test_docstart_lines_are_counted_tokens_and_x_lines_are_breaks():
    text = "-DOCSTART- -X- O O\n\na x B-PER B-PER\nb -X- O B-PER\n-X- x B-PER B-PER\nc x I-PER I-PER\n"
    assert evaluate_lines(lines_of(text)).to_text() == (
        "processed 4 tokens with 2 phrases; found: 3 phrases; correct: 2.\n"
        "accuracy:  75.00%; precision:  66.67%; recall: 100.00%; FB1:  80.00\n"
        "              PER: precision:  66.67%; recall: 100.00%; FB1:  80.00  3\n"
    )


def test_type_0_is_read_as_no_type_and_the_empty_type_is_printed_twice():
    # "B-0" and "B-" read alike (Perl's false "0"); a typeless type present on both sides is
    # listed twice by conlleval's de-duplication.
    result = evaluate_lines(lines_of("a B-0 B-\nb I-0 I\n"))
    assert split_tag("B-0") == split_tag("B-") == split_tag("B") == ("B", "")
    assert split_tag("B-NP-SBJ") == ("B", "NP-SBJ")
    assert result.to_text() == (
        "processed 2 tokens with 1 phrases; found: 1 phrases; correct: 1.\n"
        "accuracy: 100.00%; precision: 100.00%; recall: 100.00%; FB1: 100.00\n"
        "                 : precision: 100.00%; recall: 100.00%; FB1: 100.00  1\n"
        "                 : precision: 100.00%; recall: 100.00%; FB1: 100.00  1\n"
    )
    assert list(result.by_type) == [""]


def test_brackets_are_one_token_chunks():
    result = evaluate_lines(lines_of("a [-NP [-NP\nb ]-NP ]-NP\nc ]-NP O\n"))
    o = result.overall
    assert (o.found_correct, o.found_guessed, o.correct_chunks) == (3, 2, 2)


def test_crlf_input_keeps_the_carriage_return_in_the_last_tag(tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"a B-PER B-PER\r\nb O O\r\n")
    assert evaluate_file(path).to_text() == (
        "processed 2 tokens with 1 phrases; found: 2 phrases; correct: 0.\n"
        "accuracy:   0.00%; precision:   0.00%; recall:   0.00%; FB1:   0.00\n"
        "                 : precision:   0.00%; recall:   0.00%; FB1:   0.00  1\n"
        "              PER: precision:   0.00%; recall:   0.00%; FB1:   0.00  0\n"
        "             PER\r: precision:   0.00%; recall:   0.00%; FB1:   0.00  1\n"
    )


def test_raw_tags_with_an_outside_tag():
    # perl conlleval.pl -r -o NONE
    result = evaluate_lines(lines_of("a PER PER\nb PER NONE\nc NONE LOC\nd O O\n"), raw=True, o_tag="NONE")
    assert result.to_text() == (
        "processed 4 tokens with 2 phrases; found: 2 phrases; correct: 1.\n"
        "accuracy:  50.00%; precision:  50.00%; recall:  50.00%; FB1:  50.00\n"
        "              LOC: precision:   0.00%; recall:   0.00%; FB1:   0.00  1\n"
        "              PER: precision: 100.00%; recall:  50.00%; FB1:  66.67  1\n"
    )


def test_tab_delimiter_keeps_spaces_inside_fields():
    result = evaluate_lines(lines_of("a b\tB-PER\tB-PER\nc d\tO\tB-LOC\n"), delimiter="\t")
    assert (result.overall.tokens, result.overall.found_guessed, result.overall.correct_chunks) == (2, 2, 1)


def test_empty_input_prints_only_the_counts_line():
    expected = "processed 0 tokens with 0 phrases; found: 0 phrases; correct: 0.\n"
    assert evaluate_lines([]).to_text() == expected
    assert evaluate_lines(["\n", "\n"]).to_text() == expected
    assert evaluate([], []).to_text() == expected


def test_no_chunks_on_one_side_gives_zero_scores():
    result = evaluate([["O", "B-LOC"]], [["B-PER", "O"]])
    assert result.to_text() == (
        "processed 2 tokens with 1 phrases; found: 1 phrases; correct: 0.\n"
        "accuracy:   0.00%; precision:   0.00%; recall:   0.00%; FB1:   0.00\n"
        "              LOC: precision:   0.00%; recall:   0.00%; FB1:   0.00  0\n"
        "              PER: precision:   0.00%; recall:   0.00%; FB1:   0.00  1\n"
    )


def test_a_line_with_another_number_of_fields_is_refused_with_its_line_number():
    with pytest.raises(ConllevalFormatError, match=r"run\.txt, line 3: unexpected number of features: 4 \(3 on line 1\)"):
        evaluate_lines(lines_of("a O O\n\nb c O O\n"), source="run.txt")
    with pytest.raises(ConllevalFormatError, match=r"line 1: unexpected number of features in line 'a'"):
        evaluate_lines(["a\n"])


def test_sentences_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="sentence 1: 2 gold tags but 1 predicted tags"):
        evaluate([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="2 gold sentences but 1 predicted"):
        evaluate([["O"], ["O"]], [["O"]])


def test_accumulated_counts_add_up_and_rebuild_the_result():
    first = ConllevalAccumulator()
    first.add_sentence(["B-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"])
    second = ConllevalAccumulator()
    second.add_sentence(["B-LOC", "O"], ["B-ORG", "O"])
    total = first.final_counts() + second.final_counts()
    assert total == ConllevalCounts(
        tokens=5,
        correct_tags=4,
        non_o_tokens=3,
        non_o_correct_tags=2,
        found_correct={"PER": 1, "LOC": 1},
        found_guessed={"PER": 1, "ORG": 1},
        correct_chunks={"PER": 1},
    )
    both = evaluate([["B-PER", "I-PER", "O"], ["B-LOC", "O"]], [["B-PER", "I-PER", "O"], ["B-ORG", "O"]])
    assert ConllevalResult.from_counts(total).to_text() == both.to_text()


def test_result_does_not_disturb_an_open_chunk():
    accumulator = ConllevalAccumulator()
    accumulator.add_token("B-PER", "B-PER")
    # at the end of the input an open, matching chunk counts as correct ...
    assert accumulator.result().overall.correct_chunks == 1
    # ... but the input goes on, and the chunk turns out wrong
    accumulator.add_token("I-PER", "O")
    accumulator.add_boundary()
    assert accumulator.result().overall.correct_chunks == 0


def _run_main(monkeypatch, capsys, data: bytes, argv):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code = main(argv)
    return code, capsys.readouterr()


def test_command_line_prints_the_report(monkeypatch, capsys):
    code, out = _run_main(monkeypatch, capsys, SMALL_INPUT.encode(), [])
    assert code == 0 and out.out == SMALL_PERL
    code, out = _run_main(monkeypatch, capsys, SMALL_INPUT.encode(), ["-l"])
    assert code == 0 and out.out == SMALL_PERL_LATEX
    code, out = _run_main(monkeypatch, capsys, SMALL_INPUT.replace(" ", ";").encode(), ["-d", ";", "--json"])
    assert code == 0 and json.loads(out.out)["overall"]["correct_chunks"] == 2


def test_command_line_errors(monkeypatch, capsys):
    code, out = _run_main(monkeypatch, capsys, b"a O O\nb O\n", [])
    assert code == 1 and "<stdin>, line 2: unexpected number of features: 2 (3 on line 1)" in out.err
    assert out.out == ""
    code, out = _run_main(monkeypatch, capsys, b"", ["-x"])
    assert code == 2 and "unknown argument -x" in out.err
    code, out = _run_main(monkeypatch, capsys, b"", ["-d"])
    assert code == 2 and "-d requires an argument" in out.err


def test_conll2003_testb_gold_against_itself(shared_dir):
    # Every -DOCSTART- line is a counted token: 46,435 words + 231 document markers.
    path = shared_dir / "data" / "conll2003" / "eng.testb"
    with path.open(encoding="utf-8") as lines:
        doubled = [line.rstrip("\n") + " " + line.split()[-1] + "\n" if line.strip() else line for line in lines]
    result = evaluate_lines(doubled)
    o = result.overall
    assert (o.tokens, o.found_correct, o.found_guessed, o.correct_chunks) == (46666, 5648, 5648, 5648)
    assert {t: s.found_correct for t, s in result.by_type.items()} == {
        "LOC": 1668, "MISC": 702, "ORG": 1661, "PER": 1617
    }
