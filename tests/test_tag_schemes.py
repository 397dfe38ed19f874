import pickle

import pytest

from ner_elmo.data.tag_schemes import (
    TagSchemeError,
    check_well_formed,
    convert,
    detect_scheme,
    from_spans,
    is_well_formed,
    normalize_scheme,
    parse_tag,
    prefixes,
    to_spans,
    validate_tags,
)

# One sentence, its entities, and how each scheme writes them: "Anna Berg met Tomas in the
# Oslo Nairobi office of Kestrel Trading" with two adjacent LOC entities.
SPANS = [("PER", 0, 2), ("PER", 3, 4), ("LOC", 6, 7), ("LOC", 7, 8), ("ORG", 10, 12)]
LENGTH = 12
WRITTEN = {
    "IOB1": ["I-PER", "I-PER", "O", "I-PER", "O", "O", "I-LOC", "B-LOC", "O", "O", "I-ORG", "I-ORG"],
    "BIO": ["B-PER", "I-PER", "O", "B-PER", "O", "O", "B-LOC", "B-LOC", "O", "O", "B-ORG", "I-ORG"],
    "BIOUL": ["B-PER", "L-PER", "O", "U-PER", "O", "O", "U-LOC", "U-LOC", "O", "O", "B-ORG", "L-ORG"],
    "BIOES": ["B-PER", "E-PER", "O", "S-PER", "O", "O", "S-LOC", "S-LOC", "O", "O", "B-ORG", "E-ORG"],
}
BIO_EXPECTED = "expected 'O' or one of the prefixes B-, I- (BIO) followed by an entity type, e.g. 'B-PER'"


def test_scheme_names_and_aliases():
    assert [normalize_scheme(name) for name in ("IOB1", "BIO", "IOB2", "BIOUL", "BIOES", "IOBES")] == [
        "IOB1", "BIO", "BIO", "BIOUL", "BIOES", "BIOES"
    ]
    assert prefixes("BIOUL") == ("B", "I", "L", "U")
    assert prefixes("IOBES") == ("B", "I", "E", "S")
    with pytest.raises(ValueError) as error:
        normalize_scheme("bio")
    assert str(error.value) == (
        "unknown tag scheme 'bio': expected one of IOB1, BIO, BIOUL, BIOES (or the aliases IOB2, IOBES)"
    )


def test_parse_tag_accepts_prefix_and_any_type_without_whitespace():
    assert parse_tag("O", "BIO") == ("O", None)
    assert parse_tag("B-geo", "BIO") == ("B", "geo")
    assert parse_tag("I-ORG-X", "IOB1") == ("I", "ORG-X")
    assert parse_tag("U-MISC", "BIOUL") == ("U", "MISC")
    assert parse_tag("S-LOC") == ("S", "LOC")  # no scheme: any scheme's prefix


@pytest.mark.parametrize(
    "tag, reason",
    [
        ("X-PER", "unknown prefix 'X'"),
        ("b-PER", "unknown prefix 'b'"),
        ("U-PER", "unknown prefix 'U'"),
        ("B-", "empty entity type"),
        ("PER", "no '-' between a prefix and an entity type"),
        ("o", "no '-' between a prefix and an entity type"),
        ("", "no '-' between a prefix and an entity type"),
        ("B-New York", "whitespace inside the tag (several tags in one column, or a sentence on one line?)"),
        ("O I-PER", "whitespace inside the tag (several tags in one column, or a sentence on one line?)"),
        ("-PER", "unknown prefix ''"),
    ],
)
def test_parse_tag_rejects_with_a_message_saying_why(tag, reason):
    with pytest.raises(TagSchemeError) as error:
        parse_tag(tag, "BIO", position=7)
    assert str(error.value) == f"invalid tag {tag!r}: {reason}; {BIO_EXPECTED}"
    assert (error.value.tag, error.value.position) == (tag, 7)
    assert isinstance(error.value, ValueError)


def test_validation_message_lists_the_schemes_prefixes():
    with pytest.raises(TagSchemeError, match=r"prefixes B-, I-, L-, U- \(BIOUL\)"):
        validate_tags(["O", "S-PER"], "BIOUL")
    with pytest.raises(TagSchemeError, match=r"prefixes B-, I-, L-, U-, E-, S- followed"):
        validate_tags(["Z-PER"])
    with pytest.raises(TagSchemeError) as error:
        validate_tags(["O", "B-PER", "E-PER"], "BIOUL")
    assert error.value.position == 2


@pytest.mark.parametrize("scheme", sorted(WRITTEN))
def test_each_scheme_writes_and_reads_the_same_spans(scheme):
    assert from_spans(SPANS, LENGTH, scheme) == WRITTEN[scheme]
    assert to_spans(WRITTEN[scheme], scheme) == SPANS
    assert is_well_formed(WRITTEN[scheme], scheme)


@pytest.mark.parametrize("source", sorted(WRITTEN))
@pytest.mark.parametrize("target", sorted(WRITTEN))
def test_convert_between_every_pair_of_schemes(source, target):
    assert convert(WRITTEN[source], source, target) == WRITTEN[target]


def test_aliases_work_wherever_a_scheme_is_named():
    assert convert(WRITTEN["BIO"], "IOB2", "IOBES") == WRITTEN["BIOES"]


@pytest.mark.parametrize(
    "tags, scheme, spans",
    [
        # An I- that starts an entity (conlleval's reading of ill-formed BIO).
        (["I-PER", "I-PER", "O", "I-LOC"], "BIO", [("PER", 0, 2), ("LOC", 3, 4)]),
        # A type change inside I- tags starts a new entity.
        (["B-PER", "I-LOC", "I-LOC"], "BIO", [("PER", 0, 1), ("LOC", 1, 3)]),
        # IOB1's B- after O still starts an entity.
        (["O", "B-PER", "I-PER"], "IOB1", [("PER", 1, 3)]),
        (["I-PER", "B-PER", "B-PER"], "IOB1", [("PER", 0, 1), ("PER", 1, 2), ("PER", 2, 3)]),
        # BIOUL: B- without an end, I-/L- without a start, I- after L-.
        (["B-PER", "O", "I-LOC", "L-LOC", "I-LOC"], "BIOUL", [("PER", 0, 1), ("LOC", 2, 4), ("LOC", 4, 5)]),
        (["L-PER", "B-PER", "U-PER"], "BIOUL", [("PER", 0, 1), ("PER", 1, 2), ("PER", 2, 3)]),
        (["B-ORG", "I-ORG", "L-LOC"], "BIOUL", [("ORG", 0, 2), ("LOC", 2, 3)]),
        (["B-ORG", "I-ORG", "E-ORG", "S-ORG"], "BIOES", [("ORG", 0, 3), ("ORG", 3, 4)]),
        ([], "BIO", []),
        (["O", "O"], "BIOUL", []),
    ],
)
def test_lenient_decoding(tags, scheme, spans):
    assert to_spans(tags, scheme) == spans


def test_to_spans_validates_against_the_scheme():
    with pytest.raises(TagSchemeError) as error:
        to_spans(["O", "B-PER", "L-PER"], "BIO")
    assert error.value.position == 2
    assert str(error.value) == f"invalid tag 'L-PER': unknown prefix 'L'; {BIO_EXPECTED}"


def test_convert_repairs_ill_formed_input_and_auto_detects():
    assert convert(["O", "I-PER", "I-PER"], "BIO", "BIO") == ["O", "B-PER", "I-PER"]
    assert convert(["O", "B-PER", "I-PER"], "IOB1", "IOB1") == ["O", "I-PER", "I-PER"]
    assert convert(["I-LOC", "B-LOC"], "auto", "BIOUL") == ["U-LOC", "U-LOC"]
    assert convert(["B-LOC", "L-LOC"], "auto", "BIO") == ["B-LOC", "I-LOC"]


def test_from_spans_rejects_impossible_spans():
    with pytest.raises(ValueError, match=r"spans \('PER', 0, 2\) and \('LOC', 1, 3\) overlap"):
        from_spans([("LOC", 1, 3), ("PER", 0, 2)], 4, "BIO")
    with pytest.raises(ValueError, match=r"span \('PER', 2, 5\) is empty or outside the 4 tokens"):
        from_spans([("PER", 2, 5)], 4, "BIO")
    with pytest.raises(ValueError, match=r"span \('PER', 2, 2\) is empty"):
        from_spans([("PER", 2, 2)], 4, "BIO")
    with pytest.raises(ValueError, match="the label must be non-empty without whitespace"):
        from_spans([("NEW YORK", 0, 1)], 4, "BIO")
    with pytest.raises(ValueError, match="the label must be non-empty without whitespace"):
        from_spans([("", 0, 1)], 4, "BIO")


def test_from_spans_sorts_its_input():
    assert from_spans([("LOC", 2, 3), ("PER", 0, 1)], 3, "BIO") == ["B-PER", "O", "B-LOC"]


@pytest.mark.parametrize(
    "sequences, scheme",
    [
        ([["O", "I-PER", "O"], ["B-PER"]], "IOB1"),  # an I- starts an entity
        ([["B-PER", "I-PER", "O", "B-LOC"]], "BIO"),
        ([["I-PER", "B-PER"]], "IOB1"),
        ([["B-PER", "I-LOC"]], "IOB1"),  # I-LOC starts an entity: BIO never does that
        ([["O"], ["O", "O"]], "BIO"),  # no entity: undecidable, and harmless
        ([], "BIO"),
        ([["O", "U-PER"]], "BIOUL"),
        ([["B-PER", "L-PER"], ["I-LOC"]], "BIOUL"),
        ([["S-PER"]], "BIOES"),
        ([["B-PER", "E-PER"]], "BIOES"),
    ],
)
def test_detect_scheme(sequences, scheme):
    assert detect_scheme(sequences) == scheme


def test_detect_scheme_locates_invalid_tags_and_mixed_families():
    with pytest.raises(TagSchemeError) as error:
        detect_scheme([["O"], ["O", "B-PER", "X-PER"]])
    assert (error.value.sequence_index, error.value.position, error.value.tag) == (1, 2, "X-PER")
    with pytest.raises(TagSchemeError) as error:
        detect_scheme([["U-PER"], ["O"], ["B-LOC", "E-LOC"]])
    assert (error.value.sequence_index, error.value.position) == (2, 1)
    assert str(error.value) == (
        "tag 'E-LOC' belongs to BIOES but an earlier tag 'U-PER' belongs to BIOUL: use one scheme per file"
    )


@pytest.mark.parametrize(
    "tags, scheme, position, expected",
    [
        (["O", "I-PER"], "BIO", 1, "B-PER"),
        (["O", "B-PER", "I-PER"], "IOB1", 1, "I-PER"),
        (["B-PER", "O"], "BIOUL", 0, "U-PER"),
        (["U-PER", "L-PER"], "BIOUL", 1, "U-PER"),
        (["B-PER", "I-PER"], "BIOES", 1, "E-PER"),
    ],
)
def test_check_well_formed_points_at_the_first_ill_formed_tag(tags, scheme, position, expected):
    assert not is_well_formed(tags, scheme)
    with pytest.raises(TagSchemeError) as error:
        check_well_formed(tags, scheme)
    assert error.value.position == position
    assert str(error.value) == (
        f"tag {tags[position]!r} at position {position} is not well-formed {scheme}: "
        f"expected {expected!r} there"
    )


def test_invalid_tags_are_not_well_formed():
    assert not is_well_formed(["B-"], "BIO")


def test_errors_survive_pickling():
    error = TagSchemeError("invalid tag 'B-'", "B-", 3, 5)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.tag, copy.position, copy.sequence_index) == ("invalid tag 'B-'", "B-", 3, 5)


def test_module_needs_nothing_but_the_standard_library():
    # Scorers and tools import it on machines without allennlp or torch.
    import ast
    import sys

    import ner_elmo.data.tag_schemes as module

    tree = ast.parse(open(module.__file__, encoding="utf-8").read())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imported <= set(sys.stdlib_module_names)


def test_scorer_names_resolve_other_tools_spellings_but_readers_refuse_them():
    from ner_elmo.data.tag_schemes import scorer_encoding, scorer_names

    assert [scorer_encoding(n) for n in ("bilou", "IOBES", "iob2", "BMES")] == ["BIOUL", "BIOES", "BIO", "BMES"]
    assert scorer_names() == ["BILOU", "BIO", "BIOES", "BIOUL", "BMES", "IOB1", "IOB2", "IOBES"]
    with pytest.raises(ValueError, match="unknown label encoding 'XYZ'"):
        scorer_encoding("XYZ")
    with pytest.raises(ValueError, match="unknown tag scheme 'BILOU'"):
        normalize_scheme("BILOU")


def test_prefix_maps_and_distinctive_prefixes():
    from ner_elmo.data.tag_schemes import distinctive_prefixes, prefix_map, rename_prefixes

    assert prefix_map("BIOUL", "BIO") == {"L": "I", "U": "B"}
    assert prefix_map("BIOES", "BIO") == {"E": "I", "S": "B"}
    assert prefix_map("BMES", "BIO") == {"M": "I", "E": "I", "S": "B"}
    assert prefix_map("BIOUL", "BIOES") == {"L": "E", "U": "S"}
    assert prefix_map("IOB1", "BIO") == prefix_map("BIO", "BIOUL") == {}
    # Token by token, well-formed tags keep their entities.
    for scheme in ("BIOUL", "BIOES"):
        assert to_spans(rename_prefixes(WRITTEN[scheme], prefix_map(scheme, "BIO")), "BIO") == SPANS
    assert [distinctive_prefixes(s) for s in ("IOB1", "BIO", "BIOUL", "IOBES")] == [(), (), ("L", "U"), ("E", "S")]


@pytest.mark.parametrize("scheme", ["IOB1", "BIO", "BIOUL", "BIOES"])
def test_to_spans_is_conllevals_reading_of_well_formed_tags(scheme):
    from ner_elmo.reporting.error_analysis import entity_spans

    chunks = [(s.label, s.start, s.end) for s in entity_spans(WRITTEN[scheme], scheme)]
    assert to_spans(WRITTEN[scheme], scheme) == chunks == SPANS


def test_ill_formed_bioul_l_and_u_close_their_entity_where_conlleval_reads_on():
    # conlleval, given BIOUL mapped token by token (L→I, U→B), has no prefix that closes a chunk.
    from ner_elmo.reporting.error_analysis import entity_spans

    tags = ["B-PER", "L-PER", "I-PER", "U-LOC", "L-LOC"]
    assert to_spans(tags, "BIOUL") == [("PER", 0, 2), ("PER", 2, 3), ("LOC", 3, 4), ("LOC", 4, 5)]
    assert [(s.label, s.start, s.end) for s in entity_spans(tags, "BIOUL")] == [("PER", 0, 3), ("LOC", 3, 5)]


def test_chunk_spans_reads_prefixes_and_types_as_conlleval():
    from ner_elmo.data.tag_schemes import chunk_spans

    assert chunk_spans([("I", "PER"), ("B", "PER"), ("O", ""), ("I", "LOC"), ("I", "ORG")]) == [
        ("PER", 0, 1), ("PER", 1, 2), ("LOC", 3, 4), ("ORG", 4, 5)
    ]
    # A bracket is a one-token chunk; a chunk that a "." prefix carries to the end is not a span.
    assert chunk_spans([("[", "NP"), ("B", "X"), (".", "X")]) == [("NP", 0, 1)]
    assert chunk_spans([]) == []
