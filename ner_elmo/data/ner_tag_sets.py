"""
A vocabulary whose tag namespace holds every tag of each entity type of the training data.
"""
from typing import Iterable, Optional

from allennlp.data import Instance, Vocabulary

from ner_elmo.data.tag_schemes import TagSchemeError, parse_tag, prefixes


@Vocabulary.register("ner_tag_sets", constructor="from_instances")
class NerTagSetsVocabulary(Vocabulary):
    """
    allennlp's vocabulary from instances (`"from_instances"`, the default), to whose
    `label_namespace` every tag of `label_encoding` is added for each entity type found there:
    `B-`, `I-`, `L-` and `U-LOC` in BIOUL as soon as one of them is, after the tags of the data
    (whose ids do not move).

    The configs build the vocabulary from the training data alone.  Which of an entity type's
    tags that data has is chance (no `I-LOC` when no location there is three words long), and
    without the tag the model could not tag such an entity, and the data loaders would fail on
    validation or test data that has one.  An entity type the training data lacks still has no
    tag: `"ner_label_checked"` refuses data with one before training.  Tags that are not
    entity tags of `label_encoding` (part-of-speech tags, `label_encoding: null`) are left as
    the data has them.

    Registered as a `Vocabulary` with name "ner_tag_sets".

    # Parameters

    label_encoding : `str`, optional (default = `None`)
        The tags' encoding (`"BIOUL"`, `"BIO"`, `"IOB1"`, `"BIOES"`): the reader's and the
        model's.  `None`: nothing is added.
    label_namespace : `str`, optional (default = `"labels"`)
        The namespace of the tags.
    Every other `"from_instances"` key :
        As for allennlp's `Vocabulary.from_instances`.
    """

    @classmethod
    def from_instances(
        cls,
        instances: Iterable[Instance],
        label_encoding: Optional[str] = None,
        label_namespace: str = "labels",
        **kwargs,
    ) -> "Vocabulary":
        vocab = super().from_instances(instances, **kwargs)
        if label_encoding is not None:
            types = []
            for tag in vocab.get_token_to_index_vocabulary(label_namespace):
                try:
                    _, entity_type = parse_tag(tag, label_encoding)
                except TagSchemeError:
                    continue  # not a tag of the encoding: the model's label_encoding check says so
                if entity_type is not None and entity_type not in types:
                    types.append(entity_type)
            vocab.add_tokens_to_namespace(
                [f"{prefix}-{entity_type}" for entity_type in types for prefix in prefixes(label_encoding)],
                label_namespace,
            )
        return vocab
