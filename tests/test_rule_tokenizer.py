"""
`RuleTokenizer`: spaCy's tokenizer and sentencizer in pure Python give spaCy's tokens, offsets,
trailing spaces and sentence starts (here on generated text built from the rules' own special
cases, affixes, URLs and every kind of whitespace; `benchmarks/rule_tokenizer.py` compares
corpora), and `TextSegmenter` gives the same sentences with either.
"""
import random

import pytest

from ner_elmo.data.rule_tokenizer import RULES_VERSION, RuleTokenizer
from ner_elmo.data.text_segmentation import TextSegmenter, blank_english

FRAGMENTS = [
    "Angela", "Merkel", "U.S.", "e.g.", "don't", "Smith's", "(", ")", "[", "]", "\"", "'", "''", "``",
    ".", "...", ",", ";", ":", "!", "?", "-", "--", "—", "/", "$", "£", "€", "%", "&", "#", "@",
    "1996-08-22", "3.5", "10,000", "1/2", "2+2", "a-b", "Anglo-Dutch", ":)", ":-(", "<3", "^_^",
    "http://example.com/a?b=c", "www.reuters.com", "user@example.org", "O'Neill", "rock'n'roll",
    "Zoë", "Straße", "東京", "\u200b", "\u00a0", "\u2029", "can't", "won't", "y'all", "Mr.", "Dr.",
    "etc.", "vs.", "'s", "n't", "'ll", "Jan.", "a.m.", "p.m.", "No.", "St.", "km/h", "x=y", "°C",
]
SPACES = [" ", " ", " ", "", "  ", "\n", "\t", " \n ", "\n\n", "\u00a0", "\r\n"]


@pytest.fixture(scope="module")
def pair():
    nlp = blank_english()
    return nlp, RuleTokenizer(RuleTokenizer.rules_of(nlp))


def _texts(seed: int, count: int, special_cases):
    generator = random.Random(seed)
    pool = FRAGMENTS + generator.sample(sorted(special_cases), 200)
    for _ in range(count):
        pieces = []
        for _ in range(generator.randint(1, 25)):
            fragment = generator.choice(pool)
            if generator.random() < 0.3:  # glue punctuation or another fragment on
                fragment = generator.choice(["(", "\"", "'", "["]) * generator.randint(0, 2) + fragment
                fragment += generator.choice([")", ".", ",", "!", "'s", "\"", ":)", "?!"]) * generator.randint(1, 2)
            pieces.append(fragment + generator.choice(SPACES))
        yield "".join(pieces)


@pytest.mark.parametrize("seed", range(4))
def test_rule_tokens_and_sentence_starts_equal_spacys(pair, seed):
    nlp, rules = pair
    sentencizer = nlp.get_pipe("sentencizer")
    checked = 0
    for text in _texts(seed, 500, nlp.tokenizer.rules):
        doc = sentencizer(nlp.make_doc(text))
        expected = [(token.text, token.idx, bool(token.whitespace_)) for token in doc]
        tokens = rules(text)
        assert [(token.text, token.idx, token.space) for token in tokens] == expected, text
        assert rules.sentence_starts(tokens) == [sentence.start for sentence in doc.sents], text
        checked += len(expected)
    assert checked > 10_000


def test_the_segmenter_gives_the_same_sentences_with_rules(pair):
    _, rules = pair
    text = (
        "Peter Blackburn (U.S.) said: \"don't!\" Then he left. BRUSSELS 1996-08-22 \u2014 The EU rejects "
        "German call.\n\nA new paragraph :) with http://example.com/x?y=1 and " + "!" * 130 + " the end..."
    )
    with_spacy, with_rules = TextSegmenter(max_run_chars=50), TextSegmenter(max_run_chars=50, rules=rules)
    assert list(with_rules.sentences(text)) == list(with_spacy.sentences(text))
    assert with_rules.tokens(text) == with_spacy.tokens(text)
    assert len(list(with_rules.sentences(text))) == 5


def test_rules_are_json_data_of_a_known_version(pair):
    import json

    nlp, _ = pair
    rules = json.loads(json.dumps(RuleTokenizer.rules_of(nlp)))
    assert rules["version"] == RULES_VERSION and len(rules["special_cases"]) > 1000
    assert RuleTokenizer(rules)("Smith's U.S. visit.") == RuleTokenizer(RuleTokenizer.rules_of(nlp))("Smith's U.S. visit.")
    with pytest.raises(ValueError, match="tokenizer rules of version 99"):
        RuleTokenizer({**rules, "version": 99})
