"""
Property tests (hypothesis): any sentences with any valid tags, written as CoNLL or as the GMB
CSV in any of the layouts the readers accept, read back to the same tokens and tags; scheme
conversions round-trip and keep the entity spans, and agree with AllenNLP's own span utilities.

Examples per test: `max_examples` below (200 each, 8 tests: 1,600 examples).
"""
import csv
import io
from pathlib import Path

import pytest
from allennlp.data.dataset_readers.dataset_utils import span_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ner_elmo.data.dataset_readers.ner_conll import NerConllDatasetReader
from ner_elmo.data.dataset_readers.ner_gmb_csv import NerGmbCsvDatasetReader, gmb_split
from ner_elmo.data.tag_schemes import (
    SCHEMES,
    convert,
    detect_scheme,
    from_spans,
    is_well_formed,
    prefixes,
    to_spans,
)

EXAMPLES = 200
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TYPES = ["PER", "LOC", "ORG", "MISC", "geo"]

# ------------------------------------------------------------------------------------------
# Strategies.

# A sentence's entities: runs of O tokens and of typed entities (adjacent same-type entities
# happen, which IOB1 writes with B-).
segments = st.lists(
    st.tuples(st.sampled_from(["O"] + TYPES), st.integers(1, 3)), min_size=1, max_size=6
)


def layout(drawn_segments):
    """`(length, spans)` of a list of `(type or "O", width)` segments."""
    spans, position = [], 0
    for label, width in drawn_segments:
        if label != "O":
            spans.append((label, position, position + width))
        position += width
    return position, spans


def write_tags(spans, length, scheme):
    """Tags written straight from the scheme definitions (independent of `from_spans`)."""
    tags = ["O"] * length
    previous_end, previous_label = None, None
    for label, start, end in spans:
        width = end - start
        if scheme == "IOB1":
            first = "B" if (previous_end == start and previous_label == label) else "I"
            tags[start:end] = [f"{first}-{label}"] + [f"I-{label}"] * (width - 1)
        elif scheme == "BIO":
            tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (width - 1)
        else:
            single, last = ("U", "L") if scheme == "BIOUL" else ("S", "E")
            if width == 1:
                tags[start] = f"{single}-{label}"
            else:
                tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (width - 2) + [f"{last}-{label}"]
        previous_end, previous_label = end, label
    return tags


@st.composite
def tag_sentences(draw, scheme):
    """`(spans, length, well-formed tags)` of one sentence in `scheme`."""
    length, spans = layout(draw(segments))
    return spans, length, write_tags(spans, length, scheme)


def any_tags(scheme):
    """Valid but possibly ill-formed tags of `scheme` (I- after O, B- without an end, ...)."""
    tag = st.one_of(
        st.just("O"),
        st.builds(lambda prefix, label: f"{prefix}-{label}", st.sampled_from(prefixes(scheme)), st.sampled_from(TYPES[:3])),
    )
    return st.lists(tag, max_size=12)


# CoNLL tokens: anything without whitespace, control characters or a byte-order mark.
conll_token = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters="\ufeff"),
    min_size=1,
    max_size=6,
).filter(lambda token: token != "-DOCSTART-")


# ------------------------------------------------------------------------------------------
# Readers.


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


@st.composite
def conll_files(draw):
    scheme = draw(st.sampled_from(SCHEMES))
    sentences = []
    for spans, length, tags in draw(st.lists(tag_sentences(scheme), min_size=1, max_size=5)):
        words = draw(st.lists(conll_token, min_size=length, max_size=length))
        sentences.append((words, tags))
    n_columns = draw(st.integers(2, 4))
    separator = draw(st.sampled_from(["\t", " "]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = ["-DOCSTART- -X- -X- O", ""] if draw(st.booleans()) else []
    for words, tags in sentences:
        for word, tag in zip(words, tags):
            middle = [draw(conll_token) for _ in range(n_columns - 2)]
            lines.append(separator.join([word] + middle + [tag]))
        lines += [""] * draw(st.integers(1, 2))
    text = newline.join(lines)
    if not draw(st.booleans()):
        text = text.rstrip("\r\n")  # no newline after the last token line
    prefix = "\ufeff" if draw(st.booleans()) else ""
    return scheme, sentences, (prefix + text).encode("utf-8")


@PROPERTY_SETTINGS
@given(data=conll_files(), declared=st.booleans())
def test_conll_files_read_back_exactly(workdir, data, declared):
    scheme, sentences, content = data
    path = workdir / "sentences.conll"
    path.write_bytes(content)
    reader = NerConllDatasetReader(coding_scheme=scheme if declared else "auto", label_encoding=scheme)
    read = [(instance["metadata"]["words"], instance["tags"].labels) for instance in reader.read(str(path))]
    assert read == sentences


gmb_words = {
    "latin-1": st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), min_size=1, max_size=6),
    "utf-8": st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=6),
}


@st.composite
def gmb_files(draw):
    encoding = draw(st.sampled_from(sorted(gmb_words)))
    word = st.one_of(st.sampled_from(["NA", "null", "nan", "None", "N/A", ",", '"', "1,500"]), gmb_words[encoding])
    tagged = draw(st.lists(tag_sentences("BIO"), min_size=1, max_size=6))
    ids = draw(st.lists(st.integers(1, 10**6), min_size=len(tagged), max_size=len(tagged), unique=True))
    sentences = []
    for (spans, length, tags), sentence_id in zip(tagged, ids):
        words = draw(st.lists(word, min_size=length, max_size=length))
        sentences.append((sentence_id, words, tags))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["Sentence #", "Word", "POS", "Tag"])
    for sentence_id, words, tags in sentences:
        for position, (text, tag) in enumerate(zip(words, tags)):
            writer.writerow([f"Sentence: {sentence_id}" if position == 0 else "", text, "NN", tag])
    return encoding, sentences, buffer.getvalue().encode(encoding)


@PROPERTY_SETTINGS
@given(data=gmb_files())
def test_gmb_csv_reads_back_exactly_and_splits_by_the_documented_hash(workdir, data):
    encoding, sentences, content = data
    path = workdir / "ner_dataset.csv"
    path.write_bytes(content)
    reader = NerGmbCsvDatasetReader(encoding=encoding, label_encoding="BIO")

    def read(split):
        return [(instance["metadata"]["words"], instance["tags"].labels) for instance in reader.read(f"{path}#{split}")]

    assert read("all") == [(words, tags) for _, words, tags in sentences]
    for split in ("train", "validation", "test"):
        assert read(split) == [(words, tags) for sentence_id, words, tags in sentences if gmb_split(sentence_id) == split]


# ------------------------------------------------------------------------------------------
# Schemes.


@PROPERTY_SETTINGS
@given(scheme=st.sampled_from(SCHEMES), data=st.data())
def test_spans_round_trip_through_every_scheme(scheme, data):
    spans, length, tags = data.draw(tag_sentences(scheme))
    assert from_spans(spans, length, scheme) == tags
    assert to_spans(tags, scheme) == spans
    assert is_well_formed(tags, scheme)
    if spans:
        assert detect_scheme([["O"], tags]) == scheme


@PROPERTY_SETTINGS
@given(source=st.sampled_from(SCHEMES), target=st.sampled_from(SCHEMES), data=st.data())
def test_conversions_of_well_formed_tags_round_trip(source, target, data):
    spans, length, tags = data.draw(tag_sentences(source))
    converted = convert(tags, source, target)
    assert converted == write_tags(spans, length, target)
    assert convert(converted, target, source) == tags


@PROPERTY_SETTINGS
@given(source=st.sampled_from(SCHEMES), target=st.sampled_from(SCHEMES), data=st.data())
def test_conversions_of_any_valid_tags_keep_their_spans(source, target, data):
    tags = data.draw(any_tags(source))
    converted = convert(tags, source, target)
    assert len(converted) == len(tags)
    assert to_spans(converted, target) == to_spans(tags, source)
    assert is_well_formed(converted, target)
    assert convert(converted, target, target) == converted


def allennlp_spans(spans):
    """Our spans as AllenNLP writes them: `(label, (start, end_inclusive))`, sorted."""
    return sorted((label, (start, end - 1)) for label, start, end in spans)


@PROPERTY_SETTINGS
@given(tags=any_tags("BIO"))
def test_bio_and_iob1_spans_agree_with_allennlp(tags):
    # AllenNLP reads ill-formed BIO/IOB1 the same lenient way (an I- that starts an entity).
    assert allennlp_spans(to_spans(tags, "BIO")) == sorted(span_utils.bio_tags_to_spans(tags))
    assert allennlp_spans(to_spans(tags, "IOB1")) == sorted(span_utils.iob1_tags_to_spans(tags))
    assert convert(tags, "IOB1", "BIOUL") == span_utils.to_bioul(tags, encoding="IOB1")


@PROPERTY_SETTINGS
@given(data=st.data())
def test_bioul_spans_and_bio_conversion_agree_with_allennlp(data):
    spans, length, tags = data.draw(tag_sentences("BIOUL"))
    assert allennlp_spans(to_spans(tags, "BIOUL")) == sorted(span_utils.bioul_tags_to_spans(tags))
    bio = write_tags(spans, length, "BIO")
    assert convert(bio, "BIO", "BIOUL") == span_utils.to_bioul(bio, encoding="BIO") == tags


@PROPERTY_SETTINGS
@given(data=st.data())
def test_detected_scheme_decodes_to_the_written_spans(data):
    scheme = data.draw(st.sampled_from(SCHEMES))
    corpus = data.draw(st.lists(tag_sentences(scheme), min_size=1, max_size=4))
    detected = detect_scheme([tags for _, _, tags in corpus])
    if any(spans for spans, _, _ in corpus):
        assert detected == scheme
    for spans, _, tags in corpus:
        assert to_spans(tags, detected) == spans
