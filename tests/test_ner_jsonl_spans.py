"""
The `ner_jsonl_spans` reader and `allennlp ner-convert`: annotation-tool exports become the
instances a tagger trains on, tokenized as the `ner` predictor tokenizes; misaligned spans
follow the stated policy; conversions round-trip.
"""
import json
import logging

import pytest

from config_env import FIXTURES
from ner_elmo.commands.ner_convert import convert
from ner_elmo.data.dataset_readers.ner_jsonl_spans import NerJsonlSpansDatasetReader
from ner_elmo.data.errors import DataFormatError
from ner_elmo.runtime.inputs import InputReader

SPANS = FIXTURES / "spans"


def _read(path, **kwargs):
    return [
        ([token.text for token in instance["tokens"].tokens], instance["tags"].labels)
        for instance in NerJsonlSpansDatasetReader(**kwargs).read(str(path))
    ]


def test_doccano_lines_become_sentences_tagged_in_bioul():
    sentences = _read(SPANS / "doccano.jsonl")
    assert len(sentences) == 5  # the first text is two sentences
    assert sentences[0] == (
        ["Maria", "Lindqvist", "flew", "to", "Oslo", "on", "Monday", "."],
        ["B-PERSON", "L-PERSON", "O", "O", "U-CITY", "O", "O", "O"],
    )
    assert sentences[1][1] == ["O", "O", "O", "B-ORG", "L-ORG", "O", "O"]
    assert sentences[3] == (["Nothing", "to", "see", "here", "."], ["O"] * 5)
    # doccano's "entities" form.
    assert sentences[4] == (
        ["Dr.", "Amara", "Okafor", "joined", "Acme", "Robotics", "in", "Lagos", "."],
        ["O", "B-PERSON", "L-PERSON", "O", "B-ORG", "L-ORG", "O", "U-CITY", "O"],
    )


def test_the_tokens_are_the_ner_predictors(tmp_path):
    inputs = InputReader()
    texts = [json.loads(line)["text"] for line in (SPANS / "doccano.jsonl").read_text().splitlines()]
    texts.append("Mr. O'Neill's U.S. visit (in 1996-08-22) cost $3.5m -- didn't it?\n\nYes: e.g. 20%!")
    for index, text in enumerate(texts):
        path = tmp_path / f"{index}.jsonl"
        path.write_text(json.dumps({"text": text, "label": []}) + "\n")
        expected = [[token.text for token in sentence] for sentence in inputs.parse({"text": text}).sentences]
        assert [words for words, _ in _read(path)] == expected


def test_label_studio_json_min_as_an_array_and_as_lines(tmp_path):
    expected = [
        (["Sofia", "Berg", "visited", "Tallinn", "and", "Riga", "."], ["B-PERSON", "L-PERSON", "O", "U-CITY", "O", "U-CITY", "O"]),
        (["The", "Baltic", "Forum", "meets", "in", "Vilnius", "."], ["O", "B-ORG", "L-ORG", "O", "O", "U-CITY", "O"]),
    ]
    assert _read(SPANS / "label_studio.json") == expected
    lines = tmp_path / "label_studio.jsonl"
    lines.write_text("".join(json.dumps(item) + "\n" for item in json.loads((SPANS / "label_studio.json").read_text())))
    assert _read(lines, label_encoding="BIO") == [
        (words, [tag.replace("L-", "I-").replace("U-", "B-") for tag in tags]) for words, tags in expected
    ]


def _one(tmp_path, text, spans, name="one.jsonl"):
    path = tmp_path / name
    path.write_text(json.dumps({"text": "A first fine line.", "label": []}) + "\n" + json.dumps({"text": text, "label": spans}) + "\n")
    return path


@pytest.mark.parametrize(
    "spans, message",
    [
        ([[0, 4, "PER"]], r"line 2: span \[0, 4\) PER 'Mari' does not fall on token boundaries \(tokens: 'Maria'\)"),
        ([[0, 15, "PER"], [6, 15, "PER"]], r"line 2: span \[6, 15\) PER 'Lindqvist' overlaps \[0, 15\) PER"),
        ([[24, 99, "LOC"]], r"line 2: span \[24, 99\) LOC lies outside the text of 29 characters"),
        ([[5, 6, "LOC"]], r"line 2: span \[5, 6\) LOC ' ' covers no token"),
    ],
)
def test_a_misaligned_span_is_an_error_naming_file_line_and_span(tmp_path, spans, message):
    path = _one(tmp_path, "Maria Lindqvist flew to Oslo.", spans)
    with pytest.raises(DataFormatError, match=message) as error:
        _read(path)
    assert str(error.value).startswith(str(path))
    assert 'set "misaligned": "expand" or "skip"' in str(error.value)


def test_expand_widens_and_skip_leaves_out_and_both_count(tmp_path, caplog):
    spans = [[0, 4, "PER"], [2, 8, "X"], [6, 15, "PER"], [24, 27, "LOC"], [40, 50, "X"]]
    path = _one(tmp_path, "Maria Lindqvist flew to Oslo.", spans)
    reader = NerJsonlSpansDatasetReader(misaligned="expand")
    with caplog.at_level(logging.WARNING):
        tags = [instance["tags"].labels for instance in reader.read(str(path))]
    # "Mari" -> "Maria"; "ria Li" -> "Maria Lindqvist", which overlaps it: left out;
    # "Lindqvist" as it is; "Osl" -> "Oslo"; [40, 50) is outside the text.
    assert tags[1] == ["U-PER", "U-PER", "O", "O", "U-LOC", "O"]
    assert reader.last_report.expanded == 2
    assert reader.last_report.skipped == {"overlaps another": 1, "outside the text": 1}
    assert "2 span(s) widened to token boundaries" in caplog.text and "1 span(s) left out (overlaps another)" in caplog.text
    reader = NerJsonlSpansDatasetReader(misaligned="skip")
    tags = [instance["tags"].labels for instance in reader.read(str(path))]
    assert tags[1] == ["O", "U-PER", "O", "O", "O", "O"]
    assert reader.last_report.expanded == 0
    assert reader.last_report.skipped == {"not on token boundaries": 3, "outside the text": 1}


def test_only_newlines_end_lines(tmp_path):
    # JSON strings may hold U+0085 and U+2028 unescaped (ner-convert writes them so).
    path = tmp_path / "odd.jsonl"
    text = "Oslo\u0085 and Riga\u2028 met."
    path.write_text(json.dumps({"text": text, "label": [[0, 4, "LOC"]]}, ensure_ascii=False) + "\r\n", encoding="utf-8")
    assert [tags for _, tags in _read(path)][0][0] == "U-LOC"


def test_a_span_across_a_sentence_break(tmp_path):
    path = _one(tmp_path, "He left. Then Oslo.", [[3, 13, "X"]])
    with pytest.raises(DataFormatError, match=r"line 2: span \[3, 13\) X 'left. Then' crosses a sentence break"):
        _read(path)
    assert _read(path, misaligned="skip")[1:] == [(["He", "left", "."], ["O"] * 3), (["Then", "Oslo", "."], ["O"] * 3)]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", r"line 2: not a JSON object"),
        ('["a list"]', r"line 2: expected a JSON object with \"text\", got list"),
        ('{"label": []}', r"line 2: no \"text\" string"),
        ('{"text": "Oslo.", "label": [[0, "4", "LOC"]]}', r"line 2: \"label\" holds \[0, \"4\", \"LOC\"\]: a span is"),
        ('{"text": "Oslo.", "label": {"a": 1}}', r"line 2: \"label\" must be a list of spans, got dict"),
    ],
)
def test_a_bad_line_is_an_error_naming_it(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "A good line.", "label": []}) + "\n" + line + "\n")
    with pytest.raises(DataFormatError, match=message):
        _read(path)


def test_conll_to_spans_to_conll_is_the_same_file(tmp_path):
    for name in ("train.iob1.txt", "dev.iob1.txt"):
        source = FIXTURES / "conll" / name
        count, _ = convert(str(source), str(tmp_path / "spans.jsonl"))
        assert count == sum(1 for line in (tmp_path / "spans.jsonl").read_text().splitlines())
        convert(str(tmp_path / "spans.jsonl"), str(tmp_path / name), scheme="IOB1")
        assert (tmp_path / name).read_text() == source.read_text()


def test_the_reader_reads_what_ner_convert_writes_and_docbin_round_trips(tmp_path):
    source = FIXTURES / "conll" / "dev.iob1.txt"
    from ner_elmo.data.dataset_readers.ner_conll import NerConllDatasetReader

    conll = [([t.text for t in i["tokens"].tokens], i["tags"].labels) for i in NerConllDatasetReader().read(str(source))]
    convert(str(source), str(tmp_path / "dev.spacy"))
    convert(str(tmp_path / "dev.spacy"), str(tmp_path / "dev.txt"), scheme="IOB1")
    assert [line.split() for line in (tmp_path / "dev.txt").read_text().splitlines() if line.strip()] == [
        [line.split()[0], line.split()[-1]] for line in source.read_text().splitlines() if line.strip() and "-DOCSTART-" not in line
    ]
    convert(str(source), str(tmp_path / "dev.jsonl"))
    spans = _read(tmp_path / "dev.jsonl")
    # The reader re-tokenizes each text as the predictor would; these texts tokenize as CoNLL did.
    assert sum(len(words) for words, _ in spans) == sum(len(words) for words, _ in conll)
    assert [tag for _, tags in spans for tag in tags] == [tag for _, tags in conll for tag in tags]
