"""
Chunk tag schemes for named entities: the one home of what prefixes mean, of scheme
validation, detection and conversion, and of reading entities (spans) from tags.

Pure Python (no allennlp import, nothing outside the standard library), so scorers and tools
can use it anywhere: `ner_elmo.scoring.conlleval`, `ner_elmo.scoring.reports`,
`ner_elmo.reporting`, `ner_elmo.models.label_encoding`, the readers and the predictor all call
it.

A tag is either `O` (outside any entity) or `<prefix>-<type>`, e.g. `B-PER`: the prefix is one
upper-case letter from the scheme's set and the type is any non-empty text without whitespace
(`B-geo`, `I-ORG`, `U-MISC`). The schemes:

* `"IOB1"` (CoNLL-2003's original): every entity token is `I-`; `B-` marks the first token of an
  entity that directly follows another entity of the same type.
* `"BIO"` (alias `"IOB2"`): the first token of every entity is `B-`, the others `I-`.
* `"BIOUL"`: `B-` first, `I-` inside, `L-` last token of a multi-token entity; `U-` a
  single-token entity.
* `"BIOES"` (alias `"IOBES"`): BIOUL spelled with `E-` for `L-` and `S-` for `U-`.

The scorers also take two names of other tools (`OTHER_NAMES`): seqeval's `"BILOU"` (BIOUL) and
allennlp's `"BMES"` (BIOES with `M-` for `I-`).

Reading entities
----------------
Every span decoder of the package is `chunk_spans`, which applies the CoNLL `conlleval`
script's rules (`chunk_ends`, `chunk_starts`) to a sentence; `ner_elmo.scoring.conlleval`
scores with the same two rules, so spans and scores agree. `to_spans` reads a scheme's tags
through it: lenient, like conlleval, an `I-X` (or `L-X`/`E-X`) that does not continue an open
entity of type X starts a new one, so every tag sequence that passes validation has exactly one
span reading, whatever the scheme. conlleval has no prefix that closes an entity, so
`to_spans` gives it BIO tags in which an `I-`/`L-` right after an `L-`/`U-` of the same type
begins a new entity (conlleval, given the token-by-token mapping `U`→`B`, `L`→`I`, reads
`L-PER I-PER` as one entity; BIOUL's own reading is two). For well-formed tags the two readings
are the same.

Encoding (`from_spans`) always writes the canonical (well-formed) tags of a scheme, so `convert`
also repairs ill-formed input; use `is_well_formed` / `check_well_formed` to find such input.

Spans are `(label, start, end)` with `end` exclusive.
"""
import functools
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

Span = Tuple[str, int, int]

#: Canonical scheme names, in the order error messages list them.
SCHEMES: Tuple[str, ...] = ("IOB1", "BIO", "BIOUL", "BIOES")
#: Other spellings accepted wherever a scheme name is.
ALIASES: Dict[str, str] = {"IOB2": "BIO", "IOBES": "BIOES"}
#: Other tools' names that the scorers' `label_encoding` also takes (see `scorer_encoding`);
#: readers and the predictor take only `SCHEMES` and `ALIASES`.
OTHER_NAMES: Dict[str, str] = {"BILOU": "BIOUL", "BMES": "BMES"}

_PREFIXES: Dict[str, Tuple[str, ...]] = {
    "IOB1": ("B", "I"),
    "BIO": ("B", "I"),
    "BIOUL": ("B", "I", "L", "U"),
    "BIOES": ("B", "I", "E", "S"),
    # allennlp's word-segmentation encoding (Begin, Middle, End, Single), for the scorers only.
    "BMES": ("B", "M", "E", "S"),
}
# What a prefix says of its token in every scheme: B begins an entity, I continues it, L is its
# last token, U is a whole one-token entity. E/S (and BMES's M) say what L/U (and I) say.
_ROLE: Dict[str, str] = {"B": "B", "I": "I", "M": "I", "L": "L", "E": "L", "U": "U", "S": "U"}
_ROLE_ORDER = "BILU"
# Where a target scheme has no prefix for a role (BIOUL into BIO): a last token continues its
# entity and a one-token entity begins one, which is how conlleval reads them.
_FALLBACK_ROLE = {"L": "I", "U": "B"}
# Every prefix of `SCHEMES`: what `parse_tag` accepts before it knows the scheme.
_ALL_PREFIXES: Tuple[str, ...] = tuple(dict.fromkeys(p for s in SCHEMES for p in _PREFIXES[s]))
# The prefixes only BIOUL's and BIOES's tags have (their L/U roles), and whose they are.
_SCHEME_OF_PREFIX: Dict[str, str] = {
    prefix: scheme for scheme in SCHEMES for prefix in _PREFIXES[scheme] if _ROLE[prefix] in ("L", "U")
}


class TagSchemeError(ValueError):
    """
    A tag (or tag sequence) that the scheme cannot read.

    `position` is the tag's index in its sequence and `sequence_index` the sequence's index in
    the input of `detect_scheme` (both `None` when not known), so that readers can turn them
    into file line numbers.
    """

    def __init__(
        self,
        message: str,
        tag: Optional[str] = None,
        position: Optional[int] = None,
        sequence_index: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.tag = tag
        self.position = position
        self.sequence_index = sequence_index

    def __reduce__(self):
        # Keeps the attributes when the error crosses a process boundary (data-loader workers).
        return (type(self), (self.message, self.tag, self.position, self.sequence_index))


def normalize_scheme(name: str) -> str:
    """The canonical name of a scheme (`"IOB2"` -> `"BIO"`); `ValueError` for unknown names."""
    if name in SCHEMES:
        return name
    if name in ALIASES:
        return ALIASES[name]
    raise ValueError(
        f"unknown tag scheme {name!r}: expected one of {', '.join(SCHEMES)} "
        f"(or the aliases {', '.join(ALIASES)})"
    )


def scorer_encoding(name: str) -> str:
    """
    The encoding a scorer's `label_encoding` names, in any letter case: a scheme of `SCHEMES`
    (aliases included) or one of `OTHER_NAMES` (`"bilou"` -> `"BIOUL"`, `"BMES"`).
    `ValueError` for other names.
    """
    upper = name.upper()
    if upper in OTHER_NAMES:
        return OTHER_NAMES[upper]
    try:
        return normalize_scheme(upper)
    except ValueError:
        raise ValueError(f"unknown label encoding {name!r}: expected one of {scorer_names()}") from None


def scorer_names() -> List[str]:
    """Every name `scorer_encoding` takes, sorted."""
    return sorted([*SCHEMES, *ALIASES, *OTHER_NAMES])


def prefixes(scheme: str) -> Tuple[str, ...]:
    """The entity prefixes a scheme allows (besides the tag `O`)."""
    return _PREFIXES[normalize_scheme(scheme)]


def distinctive_prefixes(scheme: str) -> Tuple[str, ...]:
    """
    The prefixes that tell `scheme`'s tags from BIO and IOB1 tags, one of which every entity
    has: `("L", "U")` for BIOUL, `("E", "S")` for BIOES, none for BIO and IOB1.
    """
    scheme = normalize_scheme(scheme)
    return tuple(prefix for prefix in _PREFIXES[scheme] if _SCHEME_OF_PREFIX.get(prefix) == scheme)


def prefix_role(prefix: str) -> Optional[str]:
    """
    What a prefix says of its token, the same in every scheme: `"B"` begins an entity, `"I"`
    continues it (`I`, BMES's `M`), `"L"` is its last token (`L`, `E`), `"U"` a whole
    one-token entity (`U`, `S`); `None` for anything else.
    """
    return _ROLE.get(prefix)


def role_rank(prefix: str) -> int:
    """Position of `prefix_role(prefix)` in begin, inside, last, unit order (4 when unknown)."""
    role = _ROLE.get(prefix)
    return _ROLE_ORDER.index(role) if role else len(_ROLE_ORDER)


@functools.lru_cache(maxsize=None)
def _prefix_map(source: str, target: str) -> Tuple[Tuple[str, str], ...]:
    by_role = {_ROLE[prefix]: prefix for prefix in _PREFIXES[target]}
    renamed = []
    for prefix in _PREFIXES[source]:
        role = _ROLE[prefix]
        new = by_role.get(role) or by_role[_FALLBACK_ROLE[role]]
        if new != prefix:
            renamed.append((prefix, new))
    return tuple(renamed)


def prefix_map(encoding: str, target: str) -> Dict[str, str]:
    """
    How to rewrite `encoding`'s tags as `target`'s token by token: each prefix that changes,
    to the target's prefix of the same role or, where the target has none, to the one that
    conlleval reads alike (BIOUL to BIO: `U`→`B`, `L`→`I`; BIOUL to BIOES: `U`→`S`, `L`→`E`).
    Both names are as `scorer_encoding` takes them.

    Exact for well-formed tags. Ill-formed tags are rewritten as they are, so BIOUL's
    `L-PER I-PER` (two entities) becomes BIO's `I-PER I-PER` (one); `convert` keeps entities.
    """
    return dict(_prefix_map(scorer_encoding(encoding), scorer_encoding(target)))


def rename_prefixes(tags: Sequence[str], prefix_map: Mapping[str, str]) -> List[str]:
    """`tags` with each prefix in `prefix_map` renamed (`U-PER` → `B-PER` for `{"U": "B"}`)."""
    renamed = []
    for tag in tags:
        prefix, hyphen, rest = tag.partition("-")
        renamed.append(prefix_map[prefix] + hyphen + rest if hyphen and prefix in prefix_map else tag)
    return renamed


def _expected(allowed: Sequence[str], scheme: Optional[str]) -> str:
    listed = ", ".join(f"{p}-" for p in allowed)
    where = f" ({scheme})" if scheme else ""
    return (
        f"expected 'O' or one of the prefixes {listed}{where} followed by an entity type, "
        "e.g. 'B-PER'"
    )


def parse_tag(
    tag: str, scheme: Optional[str] = None, position: Optional[int] = None
) -> Tuple[str, Optional[str]]:
    """
    Split a tag into `(prefix, type)`; `("O", None)` for `O`.

    Raises `TagSchemeError` for anything else than `O` or an allowed prefix, `-` and a non-empty
    type without whitespace: `X-PER`, `b-PER` (prefixes are upper case), `B-`, `PER`, `o`,
    `U-PER` in BIO. With `scheme=None` every prefix of every scheme is allowed.
    """
    scheme = None if scheme is None else normalize_scheme(scheme)
    try:
        return _parse_tag(tag, scheme)
    except TagSchemeError as error:
        raise TagSchemeError(error.message, tag, position) from None


@functools.lru_cache(maxsize=4096)
def _parse_tag(tag: str, scheme: Optional[str]) -> Tuple[str, Optional[str]]:
    # Cached: a corpus has a few dozen distinct tags but millions of tokens.
    if tag == "O":
        return "O", None
    allowed = _ALL_PREFIXES if scheme is None else _PREFIXES[scheme]
    prefix, dash, label = tag.partition("-")
    if len(tag.split()) > 1:
        # Seen when a sentence is written on one line in a tab-separated file.
        reason = "whitespace inside the tag (several tags in one column, or a sentence on one line?)"
    elif not dash:
        reason = "no '-' between a prefix and an entity type"
    elif prefix not in allowed:
        reason = f"unknown prefix {prefix!r}"
    elif not label:
        reason = "empty entity type"
    else:
        return prefix, label
    raise TagSchemeError(f"invalid tag {tag!r}: {reason}; {_expected(allowed, scheme)}", tag)


def validate_tags(tags: Sequence[str], scheme: Optional[str] = None) -> None:
    """Raise `TagSchemeError` (with `position`) at the first tag `parse_tag` rejects."""
    for position, tag in enumerate(tags):
        parse_tag(tag, scheme, position)


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """
    Guess the scheme of a corpus (all its sentences' tags) from how entities start.

    The rule, in order:

    1. any `U-`/`L-` prefix: `"BIOUL"`; any `S-`/`E-` prefix: `"BIOES"` (both kinds: error);
    2. else, any `I-X` that starts an entity (first tag, or after `O` or a different type):
       `"IOB1"`, since a well-formed BIO sequence never does that;
    3. else `"BIO"`.

    The ambiguity is harmless: a BIO/IOB1 corpus whose every entity starts with `B-` is read as
    BIO (an IOB1 corpus cannot look like that unless it breaks IOB1's own rule), one with no
    entity at all is called BIO, and IOB1 and BIO tags decode to the same spans anyway (see the
    module docstring), so the guess only changes what is reported, never the entities.

    Raises `TagSchemeError` (with `sequence_index` and `position`) for an invalid tag or a
    corpus that mixes BIOUL's and BIOES's prefixes.
    """
    family: Optional[str] = None  # "BIOUL" or "BIOES" once one of their prefixes was seen
    family_tag = ""
    entity_starts_with_i = False
    for sequence_index, tags in enumerate(tag_sequences):
        previous_label: Optional[str] = None  # type of the tag before, None after O
        for position, tag in enumerate(tags):
            try:
                prefix, label = parse_tag(tag, None, position)
            except TagSchemeError as error:
                error.sequence_index = sequence_index
                raise
            this_family = _SCHEME_OF_PREFIX.get(prefix)
            if this_family is not None:
                if family is None:
                    family, family_tag = this_family, tag
                elif family != this_family:
                    raise TagSchemeError(
                        f"tag {tag!r} belongs to {this_family} but an earlier tag "
                        f"{family_tag!r} belongs to {family}: use one scheme per file",
                        tag,
                        position,
                        sequence_index,
                    )
            elif prefix == "I" and label != previous_label:
                entity_starts_with_i = True
            previous_label = label
    if family is not None:
        return family
    return "IOB1" if entity_starts_with_i else "BIO"


# conlleval's rules for where chunks end and start between two tokens, as (previous prefix,
# prefix) pairs; see `ner_elmo.scoring.conlleval`'s docstring for the whole reading.
_ENDS_BETWEEN = frozenset(
    [("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"), ("E", "E"), ("E", "I"), ("E", "O")]
)
_STARTS_BETWEEN = frozenset(
    [("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"), ("E", "E"), ("E", "I"), ("O", "E")]
)
_BRACKETS = ("[", "]")
_NO_TYPE_PREFIXES = ("O", ".")


@functools.lru_cache(maxsize=4096)
def _boundary(prev_prefix: str, prefix: str, type_changes: bool) -> Tuple[bool, bool]:
    # (a chunk ended between the two tokens, a chunk starts at the second). Cached: the span
    # decoder asks this for every token, of a few dozen prefix pairs.
    ends = (
        prev_prefix in _BRACKETS
        or (prev_prefix, prefix) in _ENDS_BETWEEN
        or (prev_prefix not in _NO_TYPE_PREFIXES and type_changes)
    )
    starts = (
        prefix in _BRACKETS
        or (prev_prefix, prefix) in _STARTS_BETWEEN
        or (prefix not in _NO_TYPE_PREFIXES and type_changes)
    )
    return ends, starts


def chunk_ends(prev_prefix: str, prefix: str, prev_type: str, chunk_type: str) -> bool:
    """Whether a chunk ended between the previous token and this one (conlleval's rule)."""
    return _boundary(prev_prefix, prefix, prev_type != chunk_type)[0]


def chunk_starts(prev_prefix: str, prefix: str, prev_type: str, chunk_type: str) -> bool:
    """Whether a chunk started between the previous token and this one (conlleval's rule)."""
    return _boundary(prev_prefix, prefix, prev_type != chunk_type)[1]


def chunk_spans(prefixes_and_types: Sequence[Tuple[str, str]]) -> List[Span]:
    """
    The chunks of one sentence as conlleval reads it, `(type, start, end_exclusive)` in order,
    from each token's `(prefix, type)` (`("B", "PER")`, `("O", "")`): a chunk runs from a token
    where `chunk_starts` holds to the next token where `chunk_ends` or `chunk_starts` holds, and
    the sentence ends with an `O` (conlleval's sentence boundary). A chunk the boundary does not
    end (after a `.` prefix) is not a span.

    The one span decoder of the package: `to_spans` and `ner_elmo.reporting.error_analysis`
    call it. `ner_elmo.scoring.conlleval`'s accumulator applies the same two rules token by
    token to the gold and the predicted tags together, since conlleval's correct-chunk count
    depends on how the two streams interleave, across sentence boundaries too.
    """
    spans: List[Span] = []
    start: Optional[int] = None
    prev_prefix, prev_type = "O", ""
    length = len(prefixes_and_types)
    for position, (prefix, chunk_type) in enumerate([*prefixes_and_types, ("O", "")]):
        ends, starts = _boundary(prev_prefix, prefix, prev_type != chunk_type)
        starts = starts and position < length
        if start is not None and (ends or starts):
            spans.append((prev_type, start, position))
            start = None
        if starts:
            start = position
        prev_prefix, prev_type = prefix, chunk_type
    return spans


def to_spans(tags: Sequence[str], scheme: str) -> List[Span]:
    """
    The entities of a tag sequence as `(label, start, end_exclusive)`, in order.

    Validates every tag against `scheme` (`TagSchemeError` with `position`). Decoding is
    lenient (see the module docstring): `["I-PER", "I-PER", "O", "B-LOC"]` in BIO gives
    `[("PER", 0, 2), ("LOC", 3, 4)]`.
    """
    scheme = normalize_scheme(scheme)
    as_bio: List[Tuple[str, str]] = []
    closed: Optional[str] = None  # type of the entity an L/U tag closed at the previous tag
    for position, tag in enumerate(tags):
        try:
            prefix, label = _parse_tag(tag, scheme)
        except TagSchemeError as error:
            raise TagSchemeError(error.message, tag, position) from None
        if label is None:
            as_bio.append(("O", ""))
            closed = None
            continue
        role = _ROLE[prefix]
        # conlleval would continue an entity that L/U closed: begin a new one there instead.
        as_bio.append(("B" if role in ("B", "U") or label == closed else "I", label))
        closed = label if role in ("L", "U") else None
    return chunk_spans(as_bio)


def from_spans(spans: Iterable[Span], length: int, scheme: str) -> List[str]:
    """
    The canonical tags of `length` tokens holding `spans` (`(label, start, end_exclusive)`).

    Raises `ValueError` for spans that overlap, are empty, fall outside `[0, length)` or whose
    label is empty or holds whitespace.
    """
    scheme = normalize_scheme(scheme)
    by_role = {_ROLE[prefix]: prefix for prefix in _PREFIXES[scheme]}
    tags = ["O"] * length
    previous: Optional[Span] = None
    for span in sorted(spans, key=lambda s: (s[1], s[2])):
        label, start, end = span
        if label.split() != [label]:  # empty, or holds whitespace
            raise ValueError(f"span {span!r}: the label must be non-empty without whitespace")
        if not 0 <= start < end <= length:
            raise ValueError(f"span {span!r} is empty or outside the {length} tokens")
        if previous is not None and start < previous[2]:
            raise ValueError(f"spans {previous!r} and {span!r} overlap")
        if scheme == "IOB1":
            adjacent_same = previous is not None and previous[2] == start and previous[0] == label
            tags[start:end] = [f"I-{label}"] * (end - start)
            if adjacent_same:
                tags[start] = f"B-{label}"
        elif scheme == "BIO":
            tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
        elif end - start == 1:
            tags[start] = f"{by_role['U']}-{label}"
        else:
            inside = [f"I-{label}"] * (end - start - 2)
            tags[start:end] = [f"B-{label}"] + inside + [f"{by_role['L']}-{label}"]
        previous = span
    return tags


def convert(tags: Sequence[str], from_scheme: str, to_scheme: str) -> List[str]:
    """
    Re-encode tags: `from_spans(to_spans(tags, from_scheme), len(tags), to_scheme)`.

    `from_scheme` may be `"auto"` (`detect_scheme([tags])`); prefer detecting once per corpus,
    since a single sentence says little. The result is canonical even when `from_scheme ==
    to_scheme`.
    """
    if from_scheme == "auto":
        from_scheme = detect_scheme([tags])
    return from_spans(to_spans(tags, from_scheme), len(tags), to_scheme)


def check_well_formed(tags: Sequence[str], scheme: str) -> None:
    """
    Raise `TagSchemeError` (with `position`) at the first tag that is not what `scheme` itself
    would write for the decoded entities: `I-PER` after `O` in BIO, `B-PER` after `O` in IOB1,
    `B-PER` not followed by `I-PER`/`L-PER` in BIOUL, and so on.
    """
    canonical = convert(tags, scheme, scheme)
    for position, (tag, expected) in enumerate(zip(tags, canonical)):
        if tag != expected:
            raise TagSchemeError(
                f"tag {tag!r} at position {position} is not well-formed "
                f"{normalize_scheme(scheme)}: expected {expected!r} there",
                tag,
                position,
            )


def is_well_formed(tags: Sequence[str], scheme: str) -> bool:
    """Whether `tags` are valid and exactly the canonical `scheme` encoding of their entities."""
    try:
        check_well_formed(tags, scheme)
    except TagSchemeError:
        return False
    return True

