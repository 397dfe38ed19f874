"""
allennlp's `multiprocess` data loader that refuses, before training, data whose labels the
vocabulary lacks.
"""
from collections import defaultdict
from typing import Dict, Iterable, Mapping, Optional, Tuple

from allennlp.common.checks import ConfigurationError
from allennlp.data import Instance, Vocabulary
from allennlp.data.data_loaders import DataLoader, MultiProcessDataLoader
from allennlp.data.fields import TextField


@DataLoader.register("ner_label_checked")
class NerLabelCheckedDataLoader(MultiProcessDataLoader):
    """
    allennlp's `"multiprocess"` data loader, unchanged, except that `index_with(vocab)` first
    checks that every label of its data (every item of a namespace without an OOV token:
    allennlp's `*tags` and `*labels`) is in `vocab`, and raises a `ConfigurationError` naming the
    labels, their namespace, the file and the first instance that has each when one is not.

    `allennlp train` builds the vocabulary from the training data alone
    (`datasets_for_vocab_creation: ["train"]`), then indexes the train, validation and test
    loaders with it before the trainer starts.  A label found only in the validation or test
    data would otherwise raise a `KeyError` when that data is first batched: after the first
    epoch, or, for `evaluate_on_test`, after the whole training.  `allennlp evaluate` indexes
    its loader the same way, so data with labels the model cannot predict is refused there too.
    Words and characters are not checked: theirs are padded namespaces, where an unseen item
    maps to the OOV token.

    With the default `max_instances_in_memory: null` the instances are already in memory and
    the check only reads them; otherwise it reads the data once more.

    Registered as a `DataLoader` with name "ner_label_checked".

    # Parameters

    Every `"multiprocess"` key (`reader` and `data_path` are given by `allennlp train`).
    """

    def index_with(self, vocab: Vocabulary) -> None:
        unseen = unseen_labels(self.iter_instances(), vocab)
        if unseen:
            listed = "; ".join(
                f"{label!r} (namespace {namespace!r}, first in instance {instance})"
                for (namespace, label), instance in unseen.items()
            )
            raise ConfigurationError(
                f"{self.data_path}: label{'s' if len(unseen) > 1 else ''} not in the training data, "
                f"so the model has no output for {'them' if len(unseen) > 1 else 'it'}: {listed}. "
                "Map such labels to training labels, drop their sentences, or train on data that has them."
            )
        super().index_with(vocab)


def unseen_labels(instances: Iterable[Instance], vocab: Vocabulary) -> Dict[Tuple[str, str], int]:
    """
    `(namespace, label) -> 1-based number of the first instance that has it`, for the items of
    `instances` in namespaces of `vocab` without an OOV token that `vocab` lacks.
    """
    unseen: Dict[Tuple[str, str], int] = {}
    known: Dict[str, Optional[Mapping[str, int]]] = {}  # None: a padded namespace
    for number, instance in enumerate(instances, start=1):
        counter: Dict[str, Dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for field in instance.fields.values():
            # Token namespaces are padded: any word maps to the OOV token; counting is wasted.
            if not isinstance(field, TextField):
                field.count_vocab_items(counter)
        for namespace, items in counter.items():
            if namespace not in known:
                try:
                    padded = vocab.is_padded(namespace)
                except KeyError:  # one without an OOV token that the training data never filled
                    padded = False
                known[namespace] = None if padded else vocab.get_token_to_index_vocabulary(namespace)
            if known[namespace] is None:
                continue
            for item in items:
                if item not in known[namespace]:
                    unseen.setdefault((namespace, item), number)
    return unseen
