"""
Chunk tag schemes for named entities: validation, detection, spans and conversion.

Pure Python (no allennlp import), so scorers and tools can use it anywhere.

A tag is either `O` (outside any entity) or `<prefix>-<type>`, e.g. `B-PER`: the prefix is one
upper-case letter from the scheme's set and the type is any non-empty text without whitespace
(`B-geo`, `I-ORG`, `U-MISC`). The schemes:

* `"IOB1"` (CoNLL-2003's original): every entity token is `I-`; `B-` marks the first token of an
  entity that directly follows another entity of the same type.
* `"BIO"` (alias `"IOB2"`): the first token of every entity is `B-`, the others `I-`.
* `"BIOUL"`: `B-` first, `I-` inside, `L-` last token of a multi-token entity; `U-` a
  single-token entity.
* `"BIOES"` (alias `"IOBES"`): BIOUL spelled with `E-` for `L-` and `S-` for `U-`.

Decoding (`to_spans`) is lenient, like conlleval: an `I-X` (or `L-X`/`E-X`) that does not continue
an open entity of type X starts a new one, so every tag sequence that passes validation has
exactly one span reading, whatever the scheme. Encoding (`from_spans`) always writes the
canonical (well-formed) tags of a scheme, so `convert` also repairs ill-formed input; use
`is_well_formed` / `check_well_formed` to find such input.

Spans are `(label, start, end)` with `end` exclusive.
"""
import functools
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

Span = Tuple[str, int, int]

#: Canonical scheme names, in the order error messages list them.
SCHEMES: Tuple[str, ...] = ("IOB1", "BIO", "BIOUL", "BIOES")
#: Other spellings accepted wherever a scheme name is.
ALIASES: Dict[str, str] = {"IOB2": "BIO", "IOBES": "BIOES"}

_PREFIXES: Dict[str, Tuple[str, ...]] = {
    "IOB1": ("B", "I"),
    "BIO": ("B", "I"),
    "BIOUL": ("B", "I", "L", "U"),
    "BIOES": ("B", "I", "E", "S"),
}
# Every prefix any scheme knows: what `detect_scheme` accepts before it knows the scheme.
_ALL_PREFIXES: Tuple[str, ...] = ("B", "I", "L", "U", "E", "S")
# Internal reading of each prefix: BIOES's E/S behave exactly like BIOUL's L/U.
_ROLE = {"B": "B", "I": "I", "L": "L", "U": "U", "E": "L", "S": "U"}


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
    if name in _PREFIXES:
        return name
    if name in ALIASES:
        return ALIASES[name]
    raise ValueError(
        f"unknown tag scheme {name!r}: expected one of {', '.join(SCHEMES)} "
        f"(or the aliases {', '.join(ALIASES)})"
    )


def prefixes(scheme: str) -> Tuple[str, ...]:
    """The entity prefixes a scheme allows (besides the tag `O`)."""
    return _PREFIXES[normalize_scheme(scheme)]


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
            if prefix in ("U", "L", "S", "E"):
                this_family = "BIOUL" if prefix in ("U", "L") else "BIOES"
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


def to_spans(tags: Sequence[str], scheme: str) -> List[Span]:
    """
    The entities of a tag sequence as `(label, start, end_exclusive)`, in order.

    Validates every tag against `scheme` (`TagSchemeError` with `position`). Decoding is
    lenient (see the module docstring): `["I-PER", "I-PER", "O", "B-LOC"]` in BIO gives
    `[("PER", 0, 2), ("LOC", 3, 4)]`.
    """
    scheme = normalize_scheme(scheme)
    spans: List[Span] = []
    open_label: Optional[str] = None  # type of the entity still open at the previous tag
    open_start = 0
    for position, tag in enumerate(tags):
        try:
            prefix, label = _parse_tag(tag, scheme)
        except TagSchemeError as error:
            raise TagSchemeError(error.message, tag, position) from None
        role = _ROLE.get(prefix, "O")
        continues = open_label is not None and open_label == label and role in ("I", "L")
        if open_label is not None and not continues:
            spans.append((open_label, open_start, position))
            open_label = None
        if role == "O":
            continue
        if role == "U":
            spans.append((label, position, position + 1))
        elif role == "L":
            spans.append((label, open_start if continues else position, position + 1))
            open_label = None
        elif not continues:  # B, or an I that opens an entity
            open_label, open_start = label, position
    if open_label is not None:
        spans.append((open_label, open_start, len(tags)))
    return spans


def from_spans(spans: Iterable[Span], length: int, scheme: str) -> List[str]:
    """
    The canonical tags of `length` tokens holding `spans` (`(label, start, end_exclusive)`).

    Raises `ValueError` for spans that overlap, are empty, fall outside `[0, length)` or whose
    label is empty or holds whitespace.
    """
    scheme = normalize_scheme(scheme)
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
        else:
            single, last = ("U", "L") if scheme == "BIOUL" else ("S", "E")
            if end - start == 1:
                tags[start] = f"{single}-{label}"
            else:
                inside = [f"I-{label}"] * (end - start - 2)
                tags[start:end] = [f"B-{label}"] + inside + [f"{last}-{label}"]
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

