import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import Token
from allennlp.data.dataset_readers import Conll2003DatasetReader
from allennlp.models import Model
from allennlp.models.archival import archive_model

from ner_elmo.commands.ner_predict import NerPredict, _ner_predict
from ner_elmo.predictors.ner import NerPredictor, UnreadableLine
from tiny_tagger import build_tagger, make_predictor, tagger_params

READER_CONFIG = {"type": "ner_conll"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model() -> Model:
    return build_tagger()


@pytest.fixture(scope="module")
def predictor(model) -> NerPredictor:
    return make_predictor(model)


def entity_tuples(output: dict) -> List[tuple]:
    keys = ("text", "label", "start", "end", "token_start", "token_end")
    return [tuple(entity[key] for key in keys) for entity in output["entities"]]


def test_multi_sentence_text_gives_entities_with_character_offsets(predictor):
    text = "Maria Lindqvist flew to Oslo. She met Kestrel Trading Company, in Nairobi!"
    output = predictor.predict_json({"text": text})
    assert output["tokens"] == [
        "Maria", "Lindqvist", "flew", "to", "Oslo", ".",
        "She", "met", "Kestrel", "Trading", "Company", ",", "in", "Nairobi", "!",
    ]
    assert output["tags"] == [
        "B-PER", "L-PER", "O", "O", "U-LOC", "O",
        "O", "O", "B-ORG", "I-ORG", "L-ORG", "O", "O", "U-LOC", "O",
    ]
    assert entity_tuples(output) == [
        ("Maria Lindqvist", "PER", 0, 15, 0, 2),
        ("Oslo", "LOC", 24, 28, 4, 5),
        ("Kestrel Trading Company", "ORG", 38, 61, 8, 11),
        ("Nairobi", "LOC", 66, 73, 13, 14),
    ]
    assert output["sentences"] == [
        {"start": 0, "end": 29, "token_start": 0, "token_end": 6},
        {"start": 30, "end": 74, "token_start": 6, "token_end": 15},
    ]
    assert output["text"] == text
    assert output["token_offsets"][:2] == [[0, 5], [6, 15]]
    assert list(output) == ["text", "tokens", "token_offsets", "tags", "entities", "sentences"]


def test_unicode_crlf_and_surrounding_whitespace_keep_offsets_exact(predictor):
    text = "  \tZoë met\u00a0Ørsted 😀 in ירושלים.\r\n\r\nثم القاهرة\r\n  "
    output = predictor.predict_json({"text": text})
    assert entity_tuples(output) == [
        ("Zoë", "PER", 3, 6, 0, 1),
        ("Ørsted", "ORG", 11, 17, 2, 3),
        ("😀", "ORG", 18, 19, 3, 4),
        ("ירושלים", "LOC", 23, 30, 5, 6),
        ("القاهرة", "LOC", 38, 45, 8, 9),
    ]
    for entity in output["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
    assert [(s["start"], s["end"]) for s in output["sentences"]] == [(3, 31), (35, 45)]


def test_tokens_input_is_one_sentence_with_offsets_into_the_space_joined_text(predictor):
    output = predictor.predict_json({"tokens": ["Maria", "Lindqvist", "visited", "Oslo", "."], "id": "a7"})
    assert output["id"] == "a7"
    assert output["text"] == "Maria Lindqvist visited Oslo ."
    assert entity_tuples(output) == [("Maria Lindqvist", "PER", 0, 15, 0, 2), ("Oslo", "LOC", 24, 28, 3, 4)]
    assert output["sentences"] == [{"start": 0, "end": 30, "token_start": 0, "token_end": 5}]


def test_sentence_input_is_not_split_into_sentences(predictor):
    output = predictor.predict_json({"sentence": "Oslo. Then Nairobi!\n\nKestrel"})
    assert output["tokens"] == ["Oslo", ".", "Then", "Nairobi", "!", "Kestrel"]
    assert output["sentences"] == [{"start": 0, "end": 28, "token_start": 0, "token_end": 6}]
    # "Kestrel" alone is B-ORG with nothing after it: decoded leniently as a one-token entity.
    assert [e["text"] for e in output["entities"]] == ["Oslo", "Nairobi", "Kestrel"]


def test_long_sentences_are_tagged_in_pieces_and_indices_stay_global(model):
    predictor = make_predictor(model, max_sentence_tokens=4)
    text = "a b c d Maria Lindqvist e f g Oslo"
    output = predictor.predict_json({"text": text})
    assert [(s["token_start"], s["token_end"]) for s in output["sentences"]] == [(0, 4), (4, 8), (8, 10)]
    assert entity_tuples(output) == [("Maria Lindqvist", "PER", 8, 23, 4, 6), ("Oslo", "LOC", 30, 34, 9, 10)]


def test_the_model_sees_at_most_max_token_chars_of_a_token(model):
    predictor = make_predictor(model, max_token_chars=4, max_run_chars=10_000)
    output = predictor.predict_json({"text": "Oslo-Bergen line " + "x" * 5000})
    assert output["tokens"] == ["Oslo-Bergen", "line", "x" * 5000]
    assert entity_tuples(output) == [("Oslo-Bergen", "LOC", 0, 11, 0, 1)]


BAD_INPUTS = [
    (UnreadableLine("blank line"), {"error": "blank line"}),
    ([1, 2], {"error": "expected a JSON object with a 'text'/'sentence'/'tokens' key, got array"}),
    ("Oslo", {"error": "expected a JSON object with a 'text'/'sentence'/'tokens' key, got string"}),
    (None, {"error": "expected a JSON object with a 'text'/'sentence'/'tokens' key, got null"}),
    ({"id": 1}, {"id": 1, "error": "expected exactly one 'text'/'sentence'/'tokens' key, got none"}),
    (
        {"id": 2, "text": "a", "tokens": ["a"]},
        {"id": 2, "error": "expected exactly one 'text'/'sentence'/'tokens' key, got 'text' and 'tokens'"},
    ),
    ({"text": 5}, {"error": "'text' must be a string, got number"}),
    ({"sentence": ["a"]}, {"error": "'sentence' must be a string, got array"}),
    ({"text": ""}, {"error": "'text' has no tokens: it is empty"}),
    ({"id": 3, "text": " \r\n\t"}, {"id": 3, "error": "'text' has no tokens: it is only whitespace or control characters"}),
    ({"tokens": "Oslo"}, {"error": "'tokens' must be a list of strings, got string"}),
    ({"tokens": []}, {"error": "'tokens' is an empty list"}),
    ({"tokens": ["a", 1]}, {"error": "'tokens'[1] must be a string, got number"}),
    ({"tokens": ["a", ""]}, {"error": "'tokens'[1] is an empty string"}),
    (
        {"id": 4, "text": "Oslo", "tags": ["U-LOC"], "error": 1},
        {"id": 4, "error": "input key(s) 'error', 'tags' are reserved for the output: rename them"},
    ),
]


@pytest.mark.parametrize("value, expected", BAD_INPUTS)
def test_bad_inputs_give_an_error_object(predictor, value, expected):
    assert predictor.predict_json(value) == expected


def test_load_line_never_raises(predictor):
    assert predictor.load_line('{"text": "Oslo"}\r\n') == {"text": "Oslo"}
    assert predictor.load_line("  \r\n") == {"error": "blank line"}
    bad = predictor.load_line('{"text": "Oslo"')
    assert isinstance(bad, UnreadableLine)
    assert bad["error"].startswith("not valid JSON: Expecting ',' delimiter: line 1 column 16")
    # A user object that merely has an "error" key is an input, not a parse failure.
    assert predictor.predict_json(predictor.load_line('{"error": "x"}'))["error"].startswith("expected exactly one")


def test_json_nested_too_deep_is_an_error_line_not_a_crash(predictor):
    # 10,000 levels overflow Python's recursion in json.loads; 65 pass it but not the limit.
    for depth in (10_000, 65):
        line = '{"text": "Oslo", "id": ' + "[" * depth + "]" * depth + "}"
        value = predictor.load_line(line)
        assert value == {"error": "JSON nested deeper than 64 levels (max_json_depth)"}
        assert predictor.predict_json(value) == {"error": "JSON nested deeper than 64 levels (max_json_depth)"}
    nested = '{"text": "Oslo", "id": ' + "[" * 62 + "]" * 62 + "}"  # 63 levels with the object
    assert predictor.predict_json(predictor.load_line(nested))["tags"] == ["U-LOC"]


def test_texts_over_max_text_chars_are_an_error_naming_the_limit(model):
    predictor = make_predictor(model, max_text_chars=20)
    assert predictor.predict_json({"text": "Oslo " * 5}) == {
        "error": "'text' has 25 characters, more than the limit of 20 (max_text_chars)"
    }
    assert predictor.predict_json({"id": 1, "tokens": ["Oslo"] * 5}) == {
        "id": 1, "error": "'tokens' has 24 characters, more than the limit of 20 (max_text_chars)"
    }
    assert predictor.predict_json({"text": "Oslo " * 4})["tags"] == ["U-LOC"] * 4


def test_long_runs_are_cut_into_max_run_chars_pieces(model):
    predictor = make_predictor(model, max_run_chars=4)
    output = predictor.predict_json({"text": "Oslo)))))) Oslo"})  # pieces "Oslo", "))))", "))"
    assert output["tokens"] == ["Oslo"] + [")"] * 6 + ["Oslo"]
    assert output["token_offsets"][:3] == [[0, 4], [4, 5], [5, 6]]
    assert entity_tuples(output) == [("Oslo", "LOC", 0, 4, 0, 1), ("Oslo", "LOC", 11, 15, 7, 8)]


def test_a_batch_keeps_input_order_and_does_not_depend_on_the_batch_size(model):
    inputs = [
        {"id": 0, "text": "Maria Lindqvist flew to Oslo. " * 3},
        UnreadableLine("not valid JSON: x"),
        {"id": 2, "tokens": ["Kestrel", "Trading", "Company"]},
        {"id": 3, "text": ""},
        {"id": 4, "sentence": "short"},
        {"id": 5, "text": "One two three four five six seven. Nairobi! " + "word " * 30},
        {"id": 6, "text": "Zoë"},
    ]
    one_by_one = [make_predictor(model).predict_json(value) for value in inputs]
    assert [output.get("id") for output in one_by_one] == [0, None, 2, 3, 4, 5, 6]
    assert [len(output.get("entities", [])) for output in one_by_one] == [6, 0, 1, 0, 0, 1, 1]
    for batch_size in (1, 2, 5, 100):
        predictor = make_predictor(model, batch_size=batch_size, max_sentence_tokens=8)
        assert predictor.predict_batch_json(inputs) == [
            make_predictor(model, max_sentence_tokens=8).predict_json(value) for value in inputs
        ]
    assert make_predictor(model, batch_size=3).predict_batch_json(inputs) == one_by_one


def test_dump_line_writes_one_utf8_line(predictor):
    line = predictor.dump_line({"text": "Zoë 😀 a\u2028b\x85c\u2029"})
    assert line == '{"text": "Zoë 😀 a\\u2028b\\u0085c\\u2029"}\n'
    assert len(line.splitlines()) == 1
    assert json.loads(line) == {"text": "Zoë 😀 a\u2028b\x85c\u2029"}
    # A lone surrogate (valid JSON escape, not encodable as UTF-8) stays escaped.
    lone = predictor.dump_line({"text": "a\ud800"})
    assert lone == '{"text": "a\\ud800"}\n'
    lone.encode("utf-8")


def test_lone_surrogates_in_the_input_are_tagged_and_written(predictor):
    output = predictor.predict_json(predictor.load_line('{"text": "Oslo \\ud800 Zoë"}'))
    assert [e["text"] for e in output["entities"]] == ["Oslo", "Zoë"]
    assert json.loads(predictor.dump_line(output)) == output


def test_label_encoding_comes_from_the_model_the_reader_or_the_arguments():
    assert make_predictor(build_tagger("ner_crf_tagger", label_encoding="BIOUL")).label_encoding == "BIOUL"
    assert make_predictor(build_tagger("crf_tagger", label_encoding="BIOUL")).label_encoding == "BIOUL"
    assert make_predictor(build_tagger("ner_simple_tagger")).label_encoding == "BIOUL"
    # allennlp's simple_tagger keeps no label_encoding: the reader's, or an argument, tells it.
    simple = build_tagger("simple_tagger", label_encoding=None)
    assert make_predictor(simple).label_encoding == "BIOUL"  # ner_conll's default
    without = Conll2003DatasetReader()  # allennlp's reader has no label_encoding either
    with pytest.raises(ConfigurationError, match="cannot tell which tag scheme"):
        NerPredictor(simple, without)
    assert NerPredictor(simple, without, label_encoding="BIOUL").label_encoding == "BIOUL"
    with pytest.raises(ConfigurationError, match=r"does not fit label encoding BIO: invalid tag 'L-PER'"):
        make_predictor(simple, label_encoding="BIO")
    with pytest.raises(ConfigurationError, match="unknown tag scheme 'BILOU'"):
        make_predictor(simple, label_encoding="BILOU")


def test_ill_formed_predictions_of_a_simple_tagger_are_decoded_leniently():
    # A softmax tagger can predict "L-PER" with no "B-PER" before it: still one entity.
    simple = build_tagger("simple_tagger", label_encoding=None)
    output = make_predictor(simple, label_encoding="BIOUL").predict_json({"text": "Dr Lindqvist and Maria"})
    assert output["tags"] == ["O", "L-PER", "O", "B-PER"]
    assert entity_tuples(output) == [("Lindqvist", "PER", 3, 12, 1, 2), ("Maria", "PER", 17, 22, 3, 4)]


@pytest.mark.parametrize("model_type", ["ner_simple_tagger", "simple_tagger"])
def test_softmax_taggers_tag_sentences_of_different_lengths_in_one_batch(model_type):
    # A softmax tagger's argmax covers the batch's padding too: each sentence keeps its own tags.
    simple = build_tagger(model_type, label_encoding="BIOUL" if model_type == "ner_simple_tagger" else None)
    text = "Maria Lindqvist flew to Oslo. She met Kestrel Trading Company, in Nairobi!"
    output = make_predictor(simple, label_encoding="BIOUL").predict_json({"text": text})
    assert output["tags"] == [
        "B-PER", "L-PER", "O", "O", "U-LOC", "O",
        "O", "O", "B-ORG", "I-ORG", "L-ORG", "O", "O", "U-LOC", "O",
    ]
    if model_type == "ner_simple_tagger":  # the model itself, as ner-report and evaluate use it
        reader = make_predictor(simple)._dataset_reader
        short, long = (reader.text_to_instance([Token(word) for word in words])
                       for words in (["Oslo"], ["Maria", "Lindqvist", "flew", "to", "Oslo"]))
        for instance in (short, long):
            reader.apply_token_indexers(instance)
        tags = [output["tags"] for output in simple.forward_on_instances([short, long])]
        assert tags == [["U-LOC"], ["B-PER", "L-PER", "O", "O", "U-LOC"]]


# ------------------------------------------------------------------------------------------
# The ner-predict command, on an archive of the tiny model.


@pytest.fixture(scope="module")
def archive(tmp_path_factory, model) -> Path:
    directory = tmp_path_factory.mktemp("serialization")
    config = {"dataset_reader": READER_CONFIG, "model": tagger_params(), "train_data_path": "unused"}
    (directory / "config.json").write_text(json.dumps(config))
    model.vocab.save_to_files(str(directory / "vocabulary"))
    torch.save(model.state_dict(), directory / "best.th")
    archive_model(directory)
    return directory / "model.tar.gz"


INPUT_LINES = [
    b'{"id": 1, "text": "Maria Lindqvist flew to Oslo."}\r\n',
    b"\n",
    b'{"id": 3, "text": "Zo\xc3\xab met \xc3\x98rsted"}\n',
    b"{not json\n",
    b'{"id": 5, "text": "caf\xe9"}\n',  # latin-1, not UTF-8
    b"   \t\n",
    b'{"id": 7, "tokens": ["Kestrel", "Trading", "Company"]}',  # no final newline
]


def command_args(
    archive: Path, input_file: Path, output_file: Optional[Path], **options
) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    NerPredict().add_subparser(parser.add_subparsers())
    values = vars(parser.parse_args(["ner-predict", str(archive), str(input_file)]))
    values.update(
        output_file=None if output_file is None else str(output_file), batch_size=2, silent=True, **options
    )
    return argparse.Namespace(**values)


def check_command_output(lines: List[str]) -> None:
    assert len(lines) == len(INPUT_LINES)
    outputs = [json.loads(line) for line in lines]
    assert [o.get("id") for o in outputs] == [1, None, 3, None, None, None, 7]
    assert [e["text"] for e in outputs[0]["entities"]] == ["Maria Lindqvist", "Oslo"]
    assert [e["text"] for e in outputs[2]["entities"]] == ["Zoë", "Ørsted"]
    assert [e["text"] for e in outputs[6]["entities"]] == ["Kestrel Trading Company"]
    assert outputs[1] == {"error": "blank line", "line": 2}
    assert outputs[3]["line"] == 4 and outputs[3]["error"].startswith("not valid JSON")
    assert outputs[4]["line"] == 5 and outputs[4]["error"].startswith("not valid UTF-8")
    assert outputs[5] == {"error": "blank line", "line": 6}
    assert "Zoë" in lines[2]  # written as UTF-8, not \u escapes


def test_ner_predict_writes_one_line_per_input_line(tmp_path, archive):
    source = tmp_path / "input.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + b"".join(INPUT_LINES))  # with a byte-order mark
    target = tmp_path / "out.jsonl"
    _ner_predict(command_args(archive, source, target, predictor_args='{"max_sentence_tokens": 3}'))
    check_command_output(target.read_text(encoding="utf-8").splitlines())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.jsonl", "out.jsonl"]


#: Lines that must each cost only themselves: too deep, too big, not an object (item 3 of the
#: hostile-input checks; the service and Spark get the same lines in their tests).
HOSTILE_LINES = [
    b'{"id": "deep", "text": "Oslo", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}\n",
    b'{"id": "big", "text": "' + b"Oslo " * 8_000 + b'"}\n',
    b'["not", "an", "object"]\n',
    b'{"id": "ok", "text": "Maria Lindqvist flew to Oslo."}\n',
]


def test_ner_predict_hostile_lines_are_error_lines_and_good_lines_are_kept(tmp_path, archive):
    source = tmp_path / "input.jsonl"
    source.write_bytes(b"".join(HOSTILE_LINES))
    target = tmp_path / "out.jsonl"
    _ner_predict(command_args(archive, source, target, max_line_bytes=30_000))
    outputs = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert outputs[:3] == [
        {"error": "JSON nested deeper than 64 levels (max_json_depth)", "line": 1},
        {"error": "the line has 40026 bytes, more than the limit of 30000 (--max-line-bytes)", "line": 2},
        {"error": "expected a JSON object with a 'text'/'sentence'/'tokens' key, got array", "line": 3},
    ]
    assert [e["text"] for e in outputs[3]["entities"]] == ["Maria Lindqvist", "Oslo"]


def test_ner_predict_leaves_no_partial_output_when_it_fails(tmp_path, archive, monkeypatch):
    source = tmp_path / "input.jsonl"
    source.write_bytes(b"".join(INPUT_LINES))
    target = tmp_path / "out.jsonl"
    target.write_text("previous results\n")
    calls = []

    def fail_on_second_batch(self, inputs):
        calls.append(len(inputs))
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return original(self, inputs)

    original = NerPredictor.predict_batch_json
    monkeypatch.setattr(NerPredictor, "predict_batch_json", fail_on_second_batch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _ner_predict(command_args(archive, source, target))
    assert calls == [2, 2]
    assert target.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.jsonl", "out.jsonl"]


def test_ner_predict_refuses_silent_without_output(tmp_path, archive):
    with pytest.raises(ConfigurationError, match="--silent without --output-file"):
        _ner_predict(command_args(archive, tmp_path / "in.jsonl", None))


@pytest.mark.slow
def test_allennlp_ner_predict_command_line(tmp_path, archive):
    """The real `allennlp ner-predict`, finding the plugin through `.allennlp_plugins`."""
    (tmp_path / ".allennlp_plugins").write_text("ner_elmo\n")
    source = tmp_path / "input.jsonl"
    source.write_bytes(b"".join(INPUT_LINES))
    command = [sys.executable, "-m", "allennlp", "ner-predict", str(archive), "input.jsonl",
               "--output-file", "out.jsonl", "--batch-size", "3"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")[-3000:]
    check_command_output((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines())
    # Not --silent: the same lines go to standard output.
    assert result.stdout.decode("utf-8").splitlines() == (tmp_path / "out.jsonl").read_text(
        encoding="utf-8"
    ).splitlines()
