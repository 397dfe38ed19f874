"""
Properties of the `ner` predictor's output for any text: offsets index the input exactly,
tokens, sentences and entities are in order and do not overlap.

The tiny model's decoded tags are replaced by a function of each token (capitalised: PER,
starting with a digit: LOC, else O; a run of tokens with the same type within a sentence
piece is one entity), so every example has entities whose offsets can be checked and whose
expected token spans are known.
"""
import json
import unicodedata
from typing import List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ner_elmo.data.tag_schemes import from_spans
from ner_elmo.data.text_segmentation import TextSegmenter
from tiny_tagger import build_tagger, make_predictor

MAX_EXAMPLES = 200
pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Characters that stress segmentation, mixed into arbitrary text.
TRICKY = list(
    " \t\r\n\n\x0b\x0c\x85\u00a0\u2028\u2029\u3000"  # whitespace and line breaks
    ".,!?;:'\"-()…。"  # punctuation
    "\x00\x07\x1b\u200b\u200d\u200e\u200f\ufeff"  # control and format characters
    "\u0301\u0308\u064b"  # combining marks
    "שלוםعربي"  # right-to-left letters
    "😀👩\U0001F3FD\U0001F1FA"  # emoji, a skin-tone modifier, a regional indicator
    "AZaz09Éé"
)
WORDS = st.from_regex(r"[A-Z][a-z]{0,6}|[a-z]{1,6}|[0-9]{1,4}|U\.S\.|e\.g\.", fullmatch=True)
NAMES = st.from_regex(
    r"[A-Z][a-z]{0,5}( [A-Z][a-z]{0,5}){1,3}|[0-9]{1,3}( [0-9]{1,3}){1,2}", fullmatch=True
)
SEPARATORS = st.sampled_from(
    [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\n\n", "\r\n \r\n", ". ", "! ", ", ", "'s "]
)
NOT_TOKEN_CATEGORIES = ("Cc", "Cf", "Cs", "Zs", "Zl", "Zp")
WITH_MODULE_FIXTURE = settings(
    max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Arbitrary text (any code point, lone surrogates included), and text built of words,
# separators and tricky characters, so that sentences and multi-token entities occur often.
TEXTS = st.one_of(
    st.text(
        alphabet=st.one_of(st.characters(), st.sampled_from(TRICKY + ["\ud800", "\udfff"])),
        max_size=300,
    ),
    st.lists(
        st.one_of(WORDS, NAMES, SEPARATORS, SEPARATORS, st.sampled_from(TRICKY), st.text(max_size=3)),
        max_size=120,
    ).map("".join),
)


def kind(word: str) -> Optional[str]:
    first = word[0]
    return "PER" if first.isupper() else "LOC" if first.isdigit() else None


def runs(words: List[str]) -> List[Tuple[str, int, int]]:
    """`(label, start, end)` for each maximal run of words of the same non-None kind."""
    spans: List[Tuple[str, int, int]] = []
    for index, word in enumerate(words):
        label = kind(word)
        if label is None:
            continue
        if spans and spans[-1][0] == label and spans[-1][2] == index:
            spans[-1] = (label, spans[-1][1], index + 1)
        else:
            spans.append((label, index, index + 1))
    return spans


@pytest.fixture(scope="module")
def predictor():
    model = build_tagger()
    decode = model.make_output_human_readable

    def tags_from_words(output_dict):
        output_dict = decode(output_dict)
        output_dict["tags"] = [
            from_spans(runs(words), len(words), "BIOUL") for words in output_dict["words"]
        ]
        return output_dict

    model.make_output_human_readable = tags_from_words  # this module's own model instance
    return make_predictor(model, max_sentence_tokens=7, batch_size=4)


def bucket(count: int) -> str:
    return "3+" if count >= 3 else str(count)


def check_output(text: str, output: dict, segmented: bool = True) -> None:
    assert output["text"] == text
    tokens, offsets, tags = output["tokens"], output["token_offsets"], output["tags"]
    assert len(tokens) == len(offsets) == len(tags) > 0
    previous_end = 0
    for token, (start, end) in zip(tokens, offsets):
        assert text[start:end] == token
        assert previous_end <= start < end
        if segmented:  # given tokens are kept as they are
            assert not token[0].isspace() and not token[-1].isspace()
        previous_end = end

    expected_entities = []
    token_end = 0
    char_end = 0
    for sentence in output["sentences"]:
        assert sentence["token_start"] == token_end < sentence["token_end"]
        assert sentence["start"] == offsets[sentence["token_start"]][0] >= char_end
        assert sentence["end"] == offsets[sentence["token_end"] - 1][1]
        assert sentence["token_end"] - sentence["token_start"] <= 7
        first = sentence["token_start"]
        # the model saw at most 50 characters of each token
        words = [token[:50] for token in tokens[first : sentence["token_end"]]]
        expected_entities += [(label, first + s, first + e) for label, s, e in runs(words)]
        token_end, char_end = sentence["token_end"], sentence["end"]
    assert token_end == len(tokens)

    found = [(e["label"], e["token_start"], e["token_end"]) for e in output["entities"]]
    assert found == expected_entities
    for entity in output["entities"]:
        assert entity["start"] == offsets[entity["token_start"]][0]
        assert entity["end"] == offsets[entity["token_end"] - 1][1]
        assert text[entity["start"] : entity["end"]] == entity["text"]


@WITH_MODULE_FIXTURE
@given(text=TEXTS)
def test_offsets_tokens_sentences_and_entities_fit_any_text(predictor, text):
    line = json.dumps({"id": 1, "text": text})
    output = predictor.predict_json(predictor.load_line(line))
    if not list(TextSegmenter().sentences(text)):
        assert output == {"id": 1, "error": output["error"]}
        assert "has no tokens" in output["error"]
        event("no tokens: error object")
        return
    check_output(text, output)
    event(f"sentences: {bucket(len(output['sentences']))}")
    event(f"entities: {bucket(len(output['entities']))}")
    if any(e["token_end"] - e["token_start"] > 1 for e in output["entities"]):
        event("a multi-token entity")
    dumped = predictor.dump_line(output)
    assert dumped.endswith("\n") and len(dumped.splitlines()) == 1
    assert json.loads(dumped) == output


@WITH_MODULE_FIXTURE
@given(words=st.lists(st.one_of(WORDS, st.text(min_size=1, max_size=8)), min_size=1, max_size=20))
def test_tokens_input_offsets_index_the_space_joined_text(predictor, words):
    output = predictor.predict_json({"tokens": words})
    assert output["tokens"] == words
    check_output(" ".join(words), output, segmented=False)
    if any(e["token_end"] - e["token_start"] > 1 for e in output["entities"]):
        event("a multi-token entity")


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(
    text=TEXTS,
    max_sentence_tokens=st.integers(1, 6),
    max_chunk_chars=st.integers(2, 40),
    max_run_chars=st.integers(1, 12),
)
def test_segmentation_covers_every_token_with_exact_offsets(text, max_sentence_tokens, max_chunk_chars, max_run_chars):
    segmenter = TextSegmenter(
        max_sentence_tokens=max_sentence_tokens, max_chunk_chars=max_chunk_chars, max_run_chars=max_run_chars
    )
    for pieces in (segmenter.sentences(text), segmenter.sentence_pieces(text)):
        covered = set()
        previous_end = 0
        for sentence in pieces:
            assert 1 <= len(sentence) <= max_sentence_tokens
            for token in sentence:
                assert text[token.start : token.end] == token.text
                assert previous_end <= token.start < token.end
                previous_end = token.end
                covered.update(range(token.start, token.end))
        # Whatever the chunking, no visible character is lost: all between tokens is
        # whitespace, control/format characters or lone surrogates.
        for index, char in enumerate(text):
            if index not in covered:
                assert char.isspace() or unicodedata.category(char) in NOT_TOKEN_CATEGORIES
