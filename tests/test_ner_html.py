"""The displaCy entity page of `allennlp ner-html`: parsed back, and rendered by chromium."""
import argparse
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ner_elmo.reporting.entity_html import (
    PALETTE,
    TYPE_COLORS,
    entity_colors,
    read_prediction_lines,
    render_entity_page,
)
from tiny_corpus import TINY_SENTENCES, tiny_config, write_conll

# Invented texts, in the "ner" predictor's output format (character offsets into "text").
PREDICTIONS = [
    {
        "text": "Zoë Åberg flew from Oslo to Nairobi.",
        "tokens": ["Zoë", "Åberg", "flew", "from", "Oslo", "to", "Nairobi", "."],
        "tags": ["B-PER", "L-PER", "O", "O", "U-LOC", "O", "U-LOC", "O"],
        "entities": [
            {"text": "Zoë Åberg", "label": "PER", "start": 0, "end": 9, "token_start": 0, "token_end": 2},
            {"text": "Oslo", "label": "LOC", "start": 20, "end": 24, "token_start": 4, "token_end": 5},
            {"text": "Nairobi", "label": "LOC", "start": 28, "end": 35, "token_start": 6, "token_end": 7},
        ],
    },
    {
        "text": "Nothing to see <b>here</b>.",
        "tokens": ["Nothing", "to", "see", "<b>here</b>", "."],
        "tags": ["O"] * 5,
        "entities": [],
    },
    {"error": "input line 3: expected \"text\", \"sentence\" or \"tokens\""},
    {
        "text": "Lumo & Sons sued Kestrel Ltd over the Tallinn Cup.",
        "entities": [
            # listed out of order: the page orders them by offset
            {"text": "Tallinn Cup", "label": "MISC", "start": 38, "end": 49},
            {"text": "Lumo & Sons", "label": "ORG", "start": 0, "end": 11},
            {"text": "Kestrel Ltd", "label": "ORG", "start": 17, "end": 28},
        ],
    },
]
EXPECTED_MARKS = [
    ("Zoë Åberg", "PER"), ("Oslo", "LOC"), ("Nairobi", "LOC"),
    ("Lumo & Sons", "ORG"), ("Kestrel Ltd", "ORG"), ("Tallinn Cup", "MISC"),
]


class PageParser(HTMLParser):
    """Collects displaCy's entity marks (text, label, background), titles and the legend."""

    def __init__(self):
        super().__init__()
        self.marks = []  # [text, label, style]
        self.titles = []
        self.legend = []
        self.charset = None
        self.text = []
        self._in_mark = self._in_label = self._in_title = self._in_legend_type = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "meta" and "charset" in attrs:
            self.charset = attrs["charset"]
        if tag == "mark" and attrs.get("class") == "entity":
            self._in_mark = True
            self.marks.append(["", "", attrs.get("style", "")])
        elif tag == "span" and self._in_mark:
            self._in_label = True
        elif tag == "h2":
            self._in_title = True
            self.titles.append("")
        elif tag == "span" and attrs.get("class") == "ner-legend-type":
            self._in_legend_type = True
            self.legend.append(["", attrs.get("style", "")])

    def handle_endtag(self, tag):
        if tag == "mark":
            self._in_mark = False
        elif tag == "span":
            self._in_label = self._in_legend_type = False
        elif tag == "h2":
            self._in_title = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_label:
            self.marks[-1][1] += data
        elif self._in_mark:
            self.marks[-1][0] += data
        if self._in_title:
            self.titles[-1] += data
        if self._in_legend_type:
            self.legend[-1][0] += data


def write_predictions(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    return parser


def test_every_entity_is_a_displacy_mark_in_order(tmp_path):
    lines = read_prediction_lines(write_predictions(tmp_path / "p.jsonl", PREDICTIONS))
    page = parse(render_entity_page(lines, source="p.jsonl"))
    assert [(text.strip(), label.strip()) for text, label, _ in page.marks] == EXPECTED_MARKS
    assert page.charset == "utf-8"
    # Text is escaped, not interpreted: "<b>here</b>" is shown, not made bold.
    assert "Nothing to see <b>here</b>." in "".join(page.text)


def test_marks_and_legend_share_the_type_colours(tmp_path):
    lines = read_prediction_lines(write_predictions(tmp_path / "p.jsonl", PREDICTIONS))
    page = parse(render_entity_page(lines))
    for _, label, style in page.marks:
        assert f"background: {TYPE_COLORS[label.strip()]}" in style
    assert [(text.split()[0], text.split()[1]) for text, _ in page.legend] == [
        ("LOC", "2"), ("MISC", "1"), ("ORG", "2"), ("PER", "1")
    ]
    for text, style in page.legend:
        assert f"background: {TYPE_COLORS[text.split()[0]]}" in style
    assert "4 texts, 6 entities, 1 failed predictions" in "".join(page.text)


def test_error_lines_are_shown_with_their_line_number(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps(PREDICTIONS[0]) + "\n\n" + json.dumps({"error": "CUDA <out> of memory"}) + "\n"
    )
    page = parse(render_entity_page(read_prediction_lines(path)))
    assert page.titles == ["line 3: prediction failed"]
    assert "CUDA <out> of memory" in "".join(page.text)
    assert len(page.marks) == 3


def test_unknown_types_get_a_stable_palette_colour():
    colors = entity_colors(["per", "WEAPON"])
    assert colors["per"] == TYPE_COLORS["PER"]
    assert colors["WEAPON"] in PALETTE
    assert entity_colors(["WEAPON"]) == {"WEAPON": colors["WEAPON"]}


@pytest.mark.parametrize(
    "record, message",
    [
        ({"text": "Oslo", "entities": [{"label": "LOC", "start": 0, "end": 9}]},
         r"p.jsonl, line 2: entity LOC \[0, 9\) lies outside the text \(4 characters\)"),
        ({"text": "Oslo", "entities": [{"text": "Osl", "label": "LOC", "start": 0, "end": 4}]},
         "p.jsonl, line 2: entity text 'Osl' differs from the text at its offsets"),
        ({"text": "Oslo Bergen", "entities": [{"label": "LOC", "start": 0, "end": 6},
                                              {"label": "LOC", "start": 5, "end": 11}]},
         "p.jsonl, line 2: entity LOC at 5 overlaps the one before it"),
        ({"tokens": ["Oslo"]}, 'p.jsonl, line 2: expected "text" and "entities"'),
        ({"text": "Oslo", "entities": ["Oslo"]},
         "p.jsonl, line 2: entity 'Oslo' needs integer \"start\", \"end\" and a \"label\""),
    ],
)
def test_inconsistent_predictions_are_refused_naming_the_line(tmp_path, record, message):
    path = write_predictions(tmp_path / "p.jsonl", [PREDICTIONS[1], record])
    with pytest.raises(ValueError, match=message):
        render_entity_page(read_prediction_lines(path), source="p.jsonl")


def test_invalid_json_is_refused_naming_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(PREDICTIONS[1]) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"p.jsonl, line 2: not valid JSON"):
        read_prediction_lines(path)


def test_ner_html_command_writes_the_page(tmp_path, capsys):
    from ner_elmo.commands.ner_html import NerHtml

    parser = argparse.ArgumentParser()
    NerHtml().add_subparser(parser.add_subparsers())
    predictions = write_predictions(tmp_path / "p.jsonl", PREDICTIONS)
    args = parser.parse_args(
        ["ner-html", str(predictions), "--output", str(tmp_path / "out" / "page.html"),
         "--title", "Demo & test"]
    )
    args.func(args)
    page = (tmp_path / "out" / "page.html").read_text(encoding="utf-8")
    assert "<title>Demo &amp; test</title>" in page
    assert [(t.strip(), l.strip()) for t, l, _ in parse(page).marks] == EXPECTED_MARKS
    assert "4 texts (1 failed) rendered to" in capsys.readouterr().out


def test_predictor_inputs_keep_line_numbers_and_unreadable_lines(tmp_path):
    from ner_elmo.commands.ner_html import read_predictor_inputs

    texts = tmp_path / "texts.txt"
    texts.write_text("Anna Berg visited Tallinn.\n\n  Omar Said left.  \r\n", encoding="utf-8")
    assert [(line, record) for line, record in read_predictor_inputs(texts)] == [
        (1, {"text": "Anna Berg visited Tallinn."}),
        (3, {"text": "  Omar Said left.  "}),
    ]
    jsonl = tmp_path / "inputs.jsonl"
    jsonl.write_text('{"sentence": "Omar left ."}\n[1, 2]\n{oops\n', encoding="utf-8")
    inputs = read_predictor_inputs(jsonl)
    assert [line for line, _ in inputs] == [1, 2, 3]
    assert inputs[0].record == {"sentence": "Omar left ."}
    assert inputs[1].record == {"error": "not a JSON object"}
    assert inputs[2].record["error"].startswith("not valid JSON")


@pytest.fixture(scope="module")
def tiny_archive(tmp_path_factory):
    """A tiny crf_tagger (BIOUL, word embeddings only) trained on invented sentences."""
    from allennlp.commands.train import train_model
    from allennlp.common import Params

    root = tmp_path_factory.mktemp("ner_html_run")
    data = write_conll(root / "train.txt", TINY_SENTENCES)
    train_model(Params(tiny_config(data, data)), root / "run")
    return root / "run" / "model.tar.gz"


def test_archive_mode_predicts_then_renders_every_line(tiny_archive, tmp_path):
    from ner_elmo.commands.ner_html import write_entity_page

    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text(
        '{"text": "Anna Berg visited Tallinn. Omar Said left Nordvik Bank."}\n'
        '{"tokens": []}\n'
        "{oops\n"
        '{"tokens": ["Rita", "Vos", "met", "Omar", "Said", "in", "Porto", "."]}\n',
        encoding="utf-8",
    )
    output = write_entity_page(inputs, tmp_path / "page.html", archive_file=tiny_archive,
                               predictor_name="ner", batch_size=2)
    page = parse(output.read_text(encoding="utf-8"))
    assert page.titles == ["line 2: prediction failed", "line 3: prediction failed"]

    from ner_elmo.commands.ner_html import predict_lines

    lines = predict_lines(tiny_archive, inputs, "ner", batch_size=2)
    assert [line for line, _ in lines] == [1, 2, 3, 4]
    expected = [
        (record["text"][e["start"] : e["end"]], e["label"])
        for _, record in lines if "entities" in record for e in record["entities"]
    ]
    assert expected  # the tiny model finds entities in its own training sentences
    assert [(t.strip(), l.strip()) for t, l, _ in page.marks] == expected


def _elmo_lexicon_archive(directory: Path) -> Path:
    """The lexicon tagger with a `ner_elmo` embedder added whose config asks for the in-memory
    activation cache, as the configs archive it."""
    import copy

    import torch
    from allennlp.common import Params
    from allennlp.data import Vocabulary
    from allennlp.models import Model
    from allennlp.models.archival import archive_model

    from conftest import FIXTURES
    from tiny_tagger import LEXICON, TAGS, tagger_params

    params = tagger_params()
    params["text_field_embedder"]["token_embedders"]["elmo"] = {
        "type": "ner_elmo", "options_file": str(FIXTURES / "elmo" / "options.json"),
        "weight_file": str(FIXTURES / "elmo" / "lm_weights.hdf5"), "do_layer_norm": False, "dropout": 0.0,
        "cache": "memory",
    }
    params["encoder"]["input_dim"] += 32
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(list(LEXICON), "tokens")
    vocab.add_tokens_to_namespace(TAGS, "labels")
    model = Model.from_params(vocab=vocab, params=Params(copy.deepcopy(params)))
    indexers = {"tokens": {"type": "single_id"}, "elmo": {"type": "elmo_characters"}}
    config = {"dataset_reader": {"type": "ner_conll", "token_indexers": indexers}, "model": params,
              "train_data_path": "unused"}
    (directory / "config.json").write_text(json.dumps(config))
    vocab.save_to_files(str(directory / "vocabulary"))
    torch.save(model.state_dict(), directory / "best.th")
    archive_model(directory)
    return directory / "model.tar.gz"


def test_archive_mode_loads_the_model_as_ner_predict_does(tmp_path, monkeypatch):
    """Through `ner_elmo.service.loading`: the archived activation cache is off (it would only
    grow with every new sentence), as in `ner-predict` and the service."""
    import ner_elmo.service.loading as loading
    from ner_elmo.commands.ner_html import write_entity_page

    built = []

    def load_serving_predictor(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    original = loading.load_serving_predictor
    monkeypatch.setattr(loading, "load_serving_predictor", load_serving_predictor)
    archive = _elmo_lexicon_archive(tmp_path)
    inputs = tmp_path / "texts.txt"
    inputs.write_text("Maria Lindqvist flew to Oslo.\n", encoding="utf-8")
    page = write_entity_page(inputs, tmp_path / "page.html", archive_file=archive).read_text(encoding="utf-8")
    assert "Lindqvist" in page and "prediction failed" not in page  # untrained: whatever tags it gives
    (predictor,) = built
    assert loading.activation_caches(predictor._model) == []


def test_archive_mode_takes_a_bundle_and_renders_what_its_archive_renders(tmp_path):
    from ner_elmo.commands.ner_export import export_bundle
    from ner_elmo.commands.ner_html import write_entity_page
    from tiny_tagger import write_archive

    (tmp_path / "run").mkdir()
    archive = write_archive(tmp_path / "run")
    bundle = export_bundle(str(archive), str(tmp_path / "bundle"))
    inputs = tmp_path / "texts.txt"
    inputs.write_text("Maria Lindqvist flew from Oslo to Nairobi.\n\nZoë joined Kestrel Trading Company.\n",
                      encoding="utf-8")
    pages = [write_entity_page(inputs, tmp_path / f"{name}.html", archive_file=model).read_text(encoding="utf-8")
             for name, model in (("archive", archive), ("bundle", bundle))]
    assert parse(pages[0]).marks and pages[0] == pages[1]


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_page_renders_in_headless_chromium_with_coloured_marks(tmp_path):
    import matplotlib.image
    import numpy as np

    lines = read_prediction_lines(write_predictions(tmp_path / "p.jsonl", PREDICTIONS))
    (tmp_path / "page.html").write_text(render_entity_page(lines), encoding="utf-8")
    screenshot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--hide-scrollbars", "--window-size=1000,900", f"--screenshot={screenshot}",
         (tmp_path / "page.html").as_uri()],
        check=True, capture_output=True, timeout=120, cwd=tmp_path,
    )
    pixels = matplotlib.image.imread(str(screenshot))[..., :3]
    assert pixels.shape[:2] == (900, 1000)
    assert float(pixels.std()) > 0.02  # not a blank page
    # The PER highlight is drawn in its colour: exact-colour pixels of its background.
    per = np.array([int(TYPE_COLORS["PER"][i : i + 2], 16) / 255 for i in (1, 3, 5)])
    assert int((np.abs(pixels - per).max(axis=-1) < 1 / 255).sum()) > 200
