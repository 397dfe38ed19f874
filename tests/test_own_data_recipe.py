"""
docs/own-data.md, step by step on the fixtures: annotation-tool exports read and converted,
a model trained with `jsonl_spans_glove_char.jsonnet`, reported per type, exported, served from
Python.
"""
import json

from allennlp.commands.train import train_model
from allennlp.common import Params

import ner_elmo
from config_env import CONFIGS, FIXTURE_ENV, FIXTURES
from ner_elmo.commands.ner_convert import convert
from ner_elmo.commands.ner_export import export_bundle
from ner_elmo.commands.ner_report import ner_report_from_archive


def test_the_own_data_recipe_runs_end_to_end(tmp_path, monkeypatch):
    # 2. Convert: the doccano export to CoNLL and back to spans, and to a DocBin.
    convert(str(FIXTURES / "spans" / "doccano.jsonl"), str(tmp_path / "all.conll"), scheme="BIOUL")
    convert(str(tmp_path / "all.conll"), str(tmp_path / "train.jsonl"))
    convert(str(tmp_path / "train.jsonl"), str(tmp_path / "train.spacy"))
    assert "Lindqvist B-PERSON" not in (tmp_path / "all.conll").read_text()  # BIOUL: B- then L-
    assert "Maria B-PERSON\nLindqvist L-PERSON" in (tmp_path / "all.conll").read_text()
    # 3. Train on the DocBin, validate on Label Studio's export.
    for name, value in FIXTURE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NER_ELMO_SPANS_TRAIN", str(tmp_path / "train.spacy"))
    overrides = {"trainer.num_epochs": 2, "model.encoder.hidden_size": 16}
    params = Params.from_file(str(CONFIGS / "jsonl_spans_glove_char.jsonnet"), params_overrides=json.dumps(overrides))
    train_model(params, tmp_path / "run")
    archive = tmp_path / "run" / "model.tar.gz"
    labels = set(json.loads((tmp_path / "run" / "metrics.json").read_text()))
    assert any(key.startswith("test_") for key in labels)
    # 4. Per-type report on the test file.
    report = ner_report_from_archive(str(archive), str(FIXTURES / "spans" / "label_studio.json"), str(tmp_path / "report"))
    assert (tmp_path / "report").is_dir() and report
    report_text = " ".join(path.read_text() for path in (tmp_path / "report").iterdir() if path.suffix in (".txt", ".json"))
    assert "CITY" in report_text and "PERSON" in report_text
    # 5. Export and tag from Python: the model's types are the annotation's.
    bundle = export_bundle(str(archive), str(tmp_path / "bundle"))
    tagger = ner_elmo.load(bundle)
    vocabulary = json.loads((bundle / "vocabulary.json").read_text())["labels"]
    assert {tag.split("-", 1)[1] for tag in vocabulary if tag != "O"} == {"PERSON", "CITY", "ORG"}
    text = "Maria Lindqvist flew to Oslo. Acme Robotics opened an office in Nairobi."
    entities = tagger(text)
    for entity in entities:
        assert entity.label in {"PERSON", "CITY", "ORG"} and 0 <= entity.score <= 1
    # ... and from spaCy.
    import spacy

    from ner_elmo import spacy_component  # noqa: F401  (the entry point finds it in a fresh process)

    nlp = spacy.blank("en")
    nlp.add_pipe("ner_elmo", config={"model": str(bundle)})
    assert [(ent.start_char, ent.end_char, ent.label_) for ent in nlp(text).ents] == [
        (entity.start, entity.end, entity.label) for entity in entities
    ]
