"""A tagger whose label_encoding does not match the tags it is given fails while it is built."""
import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader, Vocabulary
from allennlp.models import Model

from tiny_corpus import TINY_SENTENCES, tiny_config, write_conll
from tiny_tagger import tagger_params

FIX = "give the dataset reader and the model the same label_encoding"
NULL_FOR_POS = "or set the model's label_encoding to null for tags that are not entity tags (such as POS tags)"


def build(tags, label_encoding, model_type="ner_crf_tagger"):
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["Anna", "sings"], "tokens")
    vocab.add_tokens_to_namespace(tags, "labels")
    params = tagger_params(model_type, label_encoding)
    params["text_field_embedder"]["token_embedders"]["tokens"]["embedding_dim"] = 4
    params["encoder"]["input_dim"] = 4
    if label_encoding is None:
        params["label_encoding"] = None
    return Model.from_params(vocab=vocab, params=Params(params))


def error_of(tags, label_encoding, model_type="ner_crf_tagger"):
    with pytest.raises(ConfigurationError) as error:
        build(tags, label_encoding, model_type)
    return error.value.message


@pytest.mark.parametrize("model_type", ["ner_crf_tagger", "ner_simple_tagger"])
def test_bio_tags_for_a_bioul_model(model_type):
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG"]
    assert error_of(tags, "BIOUL", model_type) == (
        "label_encoding 'BIOUL' does not match the tags in vocabulary namespace 'labels': the tags "
        "(B-LOC, B-ORG, B-PER, I-LOC, ...) have entities but no L- or U- tag, which every BIOUL entity "
        f"has: they are BIO or IOB1 tags; {FIX}"
    )


def test_bioul_tags_for_a_bio_model_and_pos_tags_for_an_ner_model():
    assert error_of(["O", "B-PER", "L-PER", "U-LOC"], "BIO") == (
        "label_encoding 'BIO' does not match the tags in vocabulary namespace 'labels': 'L-PER' is not a "
        f"BIO tag ('O', or B-, I- followed by an entity type); {FIX}, {NULL_FOR_POS}"
    )
    assert error_of(["NNP", "VBZ"], "BIOUL") == (
        "label_encoding 'BIOUL' does not match the tags in vocabulary namespace 'labels': 'NNP' is not a "
        f"BIOUL tag ('O', or B-, I-, L-, U- followed by an entity type); {FIX}, {NULL_FOR_POS}"
    )


@pytest.mark.parametrize(
    "tags, label_encoding",
    [
        (["NNP", "VBZ"], None),
        (["O", "B-PER", "I-PER"], "IOB1"),
        (["O", "B-PER", "I-PER"], "BIO"),
        (["O", "U-PER"], "BIOUL"),  # single-token entities only
        (["O"], "BIOUL"),  # no entity at all
    ],
)
def test_matching_tags_build(tags, label_encoding):
    build(tags, label_encoding)


def test_reader_and_model_encodings_differ(tmp_path):
    train = write_conll(tmp_path / "train.txt", TINY_SENTENCES)
    config = tiny_config(train, train)
    config["dataset_reader"]["label_encoding"] = "BIO"  # the model keeps BIOUL
    reader = DatasetReader.from_params(Params(config["dataset_reader"]))
    vocab = Vocabulary.from_instances(reader.read(str(train)))
    with pytest.raises(ConfigurationError, match="they are BIO or IOB1 tags; give the dataset reader and the model"):
        Model.from_params(vocab=vocab, params=Params(config["model"]))
