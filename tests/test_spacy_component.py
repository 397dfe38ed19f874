"""
The `ner_elmo` spaCy component: `nlp.add_pipe("ner_elmo", config={"model": PATH})` sets
`doc.ents` with the tagger's entities and scores, on the pipeline's own tokens, in `nlp.pipe`
batches, keeping existing entities unless told to overwrite.
"""
import json
import subprocess
import sys

import pytest
import spacy
from spacy.tokens import Doc

import ner_elmo
import ner_elmo.spacy_component  # noqa: F401  (in-process; the entry point is tested in a subprocess)

TEXTS = [
    "Maria Lindqvist flew to Oslo with Kestrel Trading Company.",
    "Zoë met Maria Lindqvist in Nairobi. Then Ørsted called.",
    "Nothing here.",
]


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return tiny_bundle


def _entities(doc):
    return [(ent.start_char, ent.end_char, ent.label_, ent._.ner_elmo_score) for ent in doc.ents]


def test_a_blank_pipeline_gets_the_taggers_entities_and_scores(bundle):
    nlp = spacy.blank("en")
    nlp.add_pipe("ner_elmo", config={"model": str(bundle)})
    tagger = ner_elmo.load(bundle)
    for text in TEXTS:
        doc = nlp(text)
        assert _entities(doc) == [(e.start, e.end, e.label, e.score) for e in tagger(text)]
    doc = nlp(TEXTS[0])
    assert [(ent.text, ent.label_) for ent in doc.ents] == [
        ("Maria Lindqvist", "PER"), ("Oslo", "LOC"), ("Kestrel Trading Company", "ORG")
    ]
    assert all(0.0 <= ent._.ner_elmo_score <= 1.0 for ent in doc.ents)
    assert [token.text for token in doc] == [token.text for token in spacy.blank("en")(TEXTS[0])]


def test_nlp_pipe_batches_give_what_single_docs_give(bundle):
    nlp = spacy.blank("en")
    nlp.add_pipe("ner_elmo", config={"model": str(bundle), "batch_size": 2})
    single = [_entities(nlp(text)) for text in TEXTS * 3]
    assert [_entities(doc) for doc in nlp.pipe(TEXTS * 3, batch_size=4)] == single
    assert sum(len(entities) for entities in single) == 3 * 7


def test_a_pipeline_with_a_sentencizer_keeps_its_sentences(bundle):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("ner_elmo", config={"model": str(bundle)})
    doc = nlp(TEXTS[1])
    assert [sentence.text for sentence in doc.sents] == ["Zoë met Maria Lindqvist in Nairobi.", "Then Ørsted called."]
    assert [(ent.text, ent.label_) for ent in doc.ents] == [
        ("Zoë", "PER"), ("Maria Lindqvist", "PER"), ("Nairobi", "LOC"), ("Ørsted", "ORG")
    ]


def test_entities_are_widened_to_the_pipelines_tokens(bundle):
    # A whitespace tokenizer: "Oslo" is part of the pipeline's token "Oslo."; the model's is "Oslo".
    nlp = spacy.blank("en")
    nlp.tokenizer = lambda text: Doc(nlp.vocab, words=text.split(" "))
    nlp.add_pipe("ner_elmo", config={"model": str(bundle)})
    doc = nlp("Maria Lindqvist flew to Oslo.")
    assert [(ent.text, ent.label_) for ent in doc.ents] == [("Maria Lindqvist", "PER"), ("Oslo.", "LOC")]


def _with_existing(nlp, label):
    def existing(doc):  # an earlier component's entity on "Oslo"
        start = doc.text.index("Oslo")
        doc.ents = [doc.char_span(start, start + 4, label=label)]
        return doc

    return existing


def test_existing_entities_stay_unless_overwrite(bundle):
    for overwrite, expected in (
        (False, [("Maria Lindqvist", "PER"), ("Oslo", "CITY"), ("Kestrel Trading Company", "ORG")]),
        (True, [("Maria Lindqvist", "PER"), ("Oslo", "LOC"), ("Kestrel Trading Company", "ORG")]),
    ):
        nlp = spacy.blank("en")
        spacy.language.Language.component(f"existing_{overwrite}", func=_with_existing(nlp, "CITY"))
        nlp.add_pipe(f"existing_{overwrite}")
        nlp.add_pipe("ner_elmo", config={"model": str(bundle), "overwrite": overwrite})
        doc = nlp(TEXTS[0])
        assert [(ent.text, ent.label_) for ent in doc.ents] == expected
        assert [ent._.ner_elmo_score is None for ent in doc.ents] == [False, not overwrite, False]


def test_a_missing_model_is_a_clear_error():
    with pytest.raises(ValueError, match=r'the "ner_elmo" component needs a model'):
        spacy.blank("en").add_pipe("ner_elmo")


@pytest.mark.slow
def test_the_factory_is_found_through_its_entry_point_without_an_import(bundle):
    code = (
        "import json, sys, spacy\n"
        "nlp = spacy.blank('en')\n"
        "nlp.add_pipe('ner_elmo', config={'model': sys.argv[1]})\n"
        "print(json.dumps([(e.text, e.label_) for e in nlp(sys.argv[2]).ents]))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code, str(bundle), TEXTS[0]], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == [
        ["Maria Lindqvist", "PER"], ["Oslo", "LOC"], ["Kestrel Trading Company", "ORG"]
    ]
