"""
Classification reports for tagged sentences: entity-level (seqeval's report, in its lenient
conlleval-compatible mode or its strict mode) and token-level (scikit-learn's report over every
B-/I-/... tag).

Usage::

    report = seqeval_report(gold, predicted, mode="strict", scheme="BIOUL")
    print(report.text)
    report.scores["PER"]["f1-score"], report.scores["micro avg"]["precision"]

    print(token_report(gold, predicted).text)
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from ner_elmo.data.tag_schemes import prefix_map, rename_prefixes, role_rank, scorer_encoding, scorer_names
from ner_elmo.scoring.conlleval import aligned_sentences

Sentences = Sequence[Sequence[str]]

# seqeval's class for each scheme of `ner_elmo.data.tag_schemes` (whatever name it goes by
# there); seqeval's own names are taken as they are (IOE1 and IOE2 are schemes this package
# does not write).
_SEQEVAL_CLASSES = {"IOB1": "IOB1", "BIO": "IOB2", "BIOUL": "BILOU", "BIOES": "IOBES"}
_SEQEVAL_NAMES = ("IOB1", "IOE1", "IOB2", "IOE2", "IOBES", "BILOU")


@dataclass(frozen=True)
class ClassificationReport:
    """
    A report as text (the table users know) and as `scores`: `{label or "micro avg" /
    "macro avg" / "weighted avg" / "accuracy": {"precision", "recall", "f1-score", "support"}}`,
    plain python numbers in [0, 1] (support: counts), ready for JSON.
    """

    text: str
    scores: Dict[str, object]


def seqeval_report(
    gold: Sentences,
    predicted: Sentences,
    mode: str = "default",
    scheme: Optional[str] = None,
    digits: int = 4,
) -> ClassificationReport:
    """
    Entity-level precision, recall and F1 per type with micro, macro and weighted averages,
    computed by seqeval.

    `mode="default"` is seqeval's lenient reading, which finds conlleval's entities in BIO and
    IOB1 tags (an `I-` without `B-` opens an entity); BIOUL tags are renamed to the BIOES tags it reads
    (`scheme="BIOUL"` or tags with `U-`/`L-` prefixes: pass `scheme`). `mode="strict"` counts
    only entities well formed in `scheme` (`"IOB1"`, `"IOB2"`/`"BIO"`, `"IOE1"`, `"IOE2"`,
    `"IOBES"`/`"BIOES"`, `"BILOU"`/`"BIOUL"`; `None` lets seqeval detect it).
    """
    from seqeval.metrics import classification_report
    from seqeval.metrics.sequence_labeling import get_entities
    from seqeval.scheme import Entities

    _check_lengths(gold, predicted)
    gold_lists, predicted_lists = [list(tags) for tags in gold], [list(tags) for tags in predicted]
    if mode == "default":
        renaming = _lenient_prefix_map(scheme)
        if renaming:
            gold_lists = [rename_prefixes(tags, renaming) for tags in gold_lists]
            predicted_lists = [rename_prefixes(tags, renaming) for tags in predicted_lists]
        options = {}
        has_entities = bool(get_entities(gold_lists) or get_entities(predicted_lists))
    elif mode == "strict":
        options = {"mode": "strict", "scheme": _strict_scheme(scheme, gold_lists + predicted_lists)}
        has_entities = bool(Entities(gold_lists + predicted_lists, options["scheme"]).unique_tags)
    else:
        raise ValueError(f'mode must be "default" or "strict", got {mode!r}')
    # seqeval itself fails on an empty table with an unhelpful error
    if not has_entities:
        raise ValueError("neither the gold nor the predicted tags contain an entity: nothing to report")
    text = classification_report(gold_lists, predicted_lists, digits=digits, zero_division=0, **options)
    scores = classification_report(gold_lists, predicted_lists, output_dict=True, zero_division=0, **options)
    return ClassificationReport(text, _plain(scores))


def token_report(
    gold: Sentences, predicted: Sentences, include_o: bool = False, digits: int = 4
) -> ClassificationReport:
    """
    Token-level precision, recall, F1 and support for every tag other than `O` (and `O` itself
    with `include_o`), ordered by type then prefix (B, I, M, E, L, S, U), with scikit-learn's
    micro, macro and weighted averages. Where the listed tags are every tag present (no `O`
    anywhere, or `include_o`), scikit-learn names the micro average "accuracy".
    """
    from sklearn.metrics import classification_report

    _check_lengths(gold, predicted)
    flat_gold = [tag for tags in gold for tag in tags]
    flat_predicted = [tag for tags in predicted for tag in tags]
    labels = sorted({tag for tag in flat_gold + flat_predicted if tag != "O"}, key=_tag_sort_key)
    if include_o and "O" in set(flat_gold) | set(flat_predicted):
        labels.append("O")
    if not labels:
        raise ValueError("the gold and predicted tags are all O: pass include_o=True to report on O")
    options = {"labels": labels, "zero_division": 0}
    text = classification_report(flat_gold, flat_predicted, digits=digits, **options)
    scores = classification_report(flat_gold, flat_predicted, output_dict=True, **options)
    return ClassificationReport(text, _plain(scores))


def _check_lengths(gold: Sentences, predicted: Sentences) -> None:
    for _ in aligned_sentences(gold, predicted):  # raises at the first mismatch
        pass


def _lenient_prefix_map(scheme: Optional[str]) -> Dict[str, str]:
    # seqeval's lenient reading knows S- and E- but not U- and L-: give it BIOES's names.
    try:
        return prefix_map(scheme, "BIOES") if scheme else {}
    except ValueError:  # seqeval's own IOE1/IOE2, or a name the strict mode refuses
        return {}


def _strict_scheme(scheme: Optional[str], sequences: List[List[str]]):
    import seqeval.scheme

    if scheme is None:
        return seqeval.scheme.auto_detect(sequences)
    name = scheme.upper()
    if name not in _SEQEVAL_NAMES:
        try:
            name = _SEQEVAL_CLASSES[scorer_encoding(name)]
        except (ValueError, KeyError):
            known = {n for n in scorer_names() if scorer_encoding(n) in _SEQEVAL_CLASSES}
            raise ValueError(
                f"unknown scheme {scheme!r}: expected one of {sorted(known | set(_SEQEVAL_NAMES))}"
            ) from None
    return getattr(seqeval.scheme, name)


def _tag_sort_key(tag: str):
    prefix, hyphen, chunk_type = tag.partition("-")
    if not hyphen:
        return (tag, -1, "")
    return (chunk_type, role_rank(prefix), prefix)


def _plain(value):
    # numpy scalars -> python numbers, so the scores serialise as JSON
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value.item() if hasattr(value, "item") else value

