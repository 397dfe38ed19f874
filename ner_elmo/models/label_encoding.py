"""
The check that a tagger's `label_encoding` is the encoding of the tags it is trained on.
"""
from typing import Optional

from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary

from ner_elmo.data.tag_schemes import TagSchemeError, distinctive_prefixes, parse_tag, prefixes

#: The encodings the check knows: the tag schemes among allennlp's label encodings.
CHECKED = ("IOB1", "BIO", "BIOUL")

_FIX = "give the dataset reader and the model the same label_encoding"


def check_label_encoding(vocab: Vocabulary, namespace: str, label_encoding: Optional[str]) -> None:
    """
    Raises `ConfigurationError` when the tags in `vocab`'s `namespace` cannot be in
    `label_encoding`: a tag other than `O` or an allowed prefix and a type (`U-PER` for `"BIO"`,
    a POS tag such as `NNP`), or BIOUL tags with entities but not one `L-` or `U-` tag (every
    BIOUL entity has one: these are BIO or IOB1 tags). What a tag of each encoding is, is
    `ner_elmo.data.tag_schemes`'s `parse_tag` and `distinctive_prefixes`.

    Without the check such a mismatch surfaces only in the first training batch, as allennlp's
    span metric's `InvalidTagSequence` listing the batch's tags (`B-PER I-PER O B-LOC O`).
    BIO read as IOB1 (or the other way round) shows in no tag and is not detected: its
    constrained decoding then forbids transitions the gold tags use.

    Encodings other than IOB1, BIO and BIOUL, `None`, and an empty namespace are not checked.
    """
    if label_encoding not in CHECKED:
        return
    special = {vocab._padding_token, vocab._oov_token}
    tags = [tag for tag in vocab.get_token_to_index_vocabulary(namespace) if tag not in special]
    where = f"label_encoding {label_encoding!r} does not match the tags in vocabulary namespace {namespace!r}"
    for tag in tags:
        try:
            parse_tag(tag, label_encoding)
        except TagSchemeError:
            listed = ", ".join(f"{p}-" for p in prefixes(label_encoding))
            raise ConfigurationError(
                f"{where}: {tag!r} is not a {label_encoding} tag ('O', or {listed} followed by an "
                f"entity type); {_FIX}, or set the model's label_encoding to null for tags that are "
                "not entity tags (such as POS tags)"
            ) from None
    entity_tags = [tag for tag in tags if tag != "O"]
    distinctive = distinctive_prefixes(label_encoding)
    if distinctive and entity_tags and not any(parse_tag(tag)[0] in distinctive for tag in entity_tags):
        shown = ", ".join(sorted(entity_tags)[:4]) + (", ..." if len(entity_tags) > 4 else "")
        raise ConfigurationError(
            f"{where}: the tags ({shown}) have entities but no "
            f"{' or '.join(p + '-' for p in distinctive)} tag, which every {label_encoding} "
            f"entity has: they are BIO or IOB1 tags; {_FIX}"
        )
