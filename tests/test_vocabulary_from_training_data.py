"""
Issue 20: the vocabularies come from the training data alone, and every GloVe word has its vector
when a model tags new text.

* Every config builds its vocabularies from the training data (`datasets_for_vocab_creation`),
  extends the GloVe embedder with the file's other words (`pretrained_extension`) and checks
  the labels of its validation and test data (`ner_label_checked`).
* `conll2003_glove_char` trained on the fixtures (the dev file as validation and test data):
  its vocabulary is the training words, then the GloVe words the training data lacks; a word
  only in the dev file is absent unless GloVe has it. After train -> archive -> load, such a
  word has exactly its GloVe vector, a training word its fine-tuned one.
* A GloVe word the training data lacks changes the tag the "ner" predictor gives it.
* A character the training data lacks maps to the character namespace's unknown token.
* A label only in the validation or test data stops `allennlp train` before training, naming
  the label and the file.
"""
import json
import shutil
from pathlib import Path
from typing import Dict, List, Set

import pytest
import torch
from allennlp.commands.evaluate import evaluate_from_archive
from allennlp.commands.train import train_model
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader, Instance, Vocabulary
from allennlp.data.fields import SequenceLabelField, TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer
from allennlp.data.tokenizers import Token
from allennlp.models import Model
from allennlp.models.archival import archive_model, load_archive
from allennlp.predictors import Predictor

from config_env import CONFIGS, FIXTURE_ENV
from ner_elmo.common.safe_archive import load_archive_safely
from ner_elmo.data.data_loaders.ner_label_checked import unseen_labels
from tiny_tagger import TAGS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = CONFIGS / "conll2003_glove_char.jsonnet"
TRAIN = Path(FIXTURE_ENV["NER_ELMO_CONLL_TRAIN"])
DEV = Path(FIXTURE_ENV["NER_ELMO_CONLL_DEV"])
GLOVE_FILE = Path(FIXTURE_ENV["NER_ELMO_GLOVE"])


def read_glove(path: Path) -> Dict[str, torch.Tensor]:
    """word -> vector, parsed as allennlp parses it (float32), in file order."""
    vectors = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, *numbers = line.rstrip().split(" ")
        vectors[word] = torch.tensor([float(number) for number in numbers], dtype=torch.float32)
    return vectors


GLOVE = read_glove(GLOVE_FILE)


def file_words(path: Path) -> List[str]:
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("-DOCSTART-"):
            words.append(line.split()[0])
    return words


TRAIN_WORDS: Set[str] = {word.lower() for word in file_words(TRAIN)}
DEV_ONLY_WORDS: Set[str] = {word.lower() for word in file_words(DEV)} - TRAIN_WORDS


def config_params(**overrides) -> Params:
    return Params.from_file(str(CONFIG), params_overrides=json.dumps(overrides), ext_vars=FIXTURE_ENV)


@pytest.mark.parametrize("config_name", sorted(path.name for path in CONFIGS.glob("*.jsonnet")))
def test_every_config_builds_its_vocabulary_from_the_training_data(config_name):
    config = Params.from_file(str(CONFIGS / config_name), ext_vars=FIXTURE_ENV).as_dict()
    assert config["datasets_for_vocab_creation"] == ["train"]
    assert config["evaluate_on_test"] and config["test_data_path"]  # what the check is about
    # The test data is read with the validation loader.
    assert config["data_loader"]["type"] == config["validation_data_loader"]["type"] == "ner_label_checked"
    glove = config["model"]["text_field_embedder"]["token_embedders"].get("tokens")
    if glove is not None:
        assert glove["type"] == "ner_embedding" and glove["pretrained_extension"] is True


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """conll2003_glove_char trained for 2 epochs on the fixtures; the dev file is also the test file."""
    run = tmp_path_factory.mktemp("glove_char") / "run"
    model = train_model(config_params(**{"trainer.num_epochs": 2}), run)
    return model, run


def test_the_vocabulary_is_the_training_words_then_the_glove_words(trained):
    model, run = trained
    assert json.loads((run / "config.json").read_text())["datasets_for_vocab_creation"] == ["train"]
    vocab = model.vocab
    embedder = model.text_field_embedder.token_embedder_tokens
    trained_rows = len(embedder.weight)
    words = [vocab.get_token_from_index(index, "tokens") for index in range(vocab.get_vocab_size("tokens"))]
    assert words[:2] == [vocab._padding_token, vocab._oov_token]
    assert set(words[2:trained_rows]) == TRAIN_WORDS and len(words[2:trained_rows]) == len(TRAIN_WORDS)
    # In the file's order, after every training word (whose ids did not move).
    assert words[trained_rows:] == [word for word in GLOVE if word not in TRAIN_WORDS]
    assert embedder.extension.shape == (len(words) - trained_rows, 50)
    # The archived vocabulary is the same.
    archived = Vocabulary.from_files(str(run / "vocabulary"))
    assert archived.get_index_to_token_vocabulary("tokens") == vocab.get_index_to_token_vocabulary("tokens")

    # A word found only in the dev file: an extension word when GloVe has it, else unknown.
    assert {"city", "new", "with"} <= DEV_ONLY_WORDS & set(GLOVE)
    assert {"adeyemi", "dodoma", "chairman"} <= DEV_ONLY_WORDS - set(GLOVE)
    oov = vocab.get_token_index(vocab._oov_token, "tokens")
    for word in DEV_ONLY_WORDS:
        if word in GLOVE:
            assert vocab.get_token_index(word, "tokens") >= trained_rows, word
        else:
            assert word not in vocab.get_token_to_index_vocabulary("tokens"), word
            assert vocab.get_token_index(word, "tokens") == oov

    # Characters: the training data's only.
    train_characters = {character for word in file_words(TRAIN) for character in word}
    assert set(vocab.get_token_to_index_vocabulary("token_characters")) == train_characters | {
        vocab._padding_token, vocab._oov_token}

    # Labels: the training data's tags, then every other BIOUL tag of their entity types
    # ("ner_tag_sets"). No location of the training file is three words long: I-LOC is added.
    config = json.loads((run / "config.json").read_text())
    reader = DatasetReader.from_params(Params(config["dataset_reader"]))
    train_tags = {tag for instance in reader.read(str(TRAIN)) for tag in instance["tags"].labels}
    labels = list(vocab.get_token_to_index_vocabulary("labels"))
    assert set(labels[: len(train_tags)]) == train_tags and "I-LOC" not in train_tags
    types = ("PER", "LOC", "ORG", "MISC")
    assert set(labels) == {"O"} | {f"{prefix}-{type_}" for type_ in types for prefix in "BILU"}
    assert len(labels) == 17


def test_a_character_unseen_in_training_maps_to_the_character_unknown_token(trained):
    model, run = trained
    vocab = model.vocab
    reader = DatasetReader.from_params(Params(json.loads((run / "config.json").read_text())["dataset_reader"]))
    indexer = reader._token_indexers["token_characters"]
    assert "Ω" not in vocab.get_token_to_index_vocabulary("token_characters")
    (ids,) = indexer.tokens_to_indices([Token("Ωne")], vocab)["token_characters"]
    oov = vocab.get_token_index(vocab._oov_token, "token_characters")
    assert ids == [oov, vocab.get_token_index("n", "token_characters"), vocab.get_token_index("e", "token_characters")]
    assert oov == 1


def test_after_archive_and_load_glove_words_keep_exactly_their_vectors_and_training_words_their_tuned_ones(trained):
    model, run = trained
    loaded = load_archive(str(run / "model.tar.gz")).model
    vocab = loaded.vocab
    embedder = loaded.text_field_embedder.token_embedder_tokens
    trained_embedder = model.text_field_embedder.token_embedder_tokens
    assert torch.equal(embedder.weight, trained_embedder.weight)
    assert torch.equal(embedder.extension, trained_embedder.extension)
    assert not embedder.extension.requires_grad and "extension" not in dict(loaded.named_parameters())

    def vector(word: str) -> torch.Tensor:
        return embedder(torch.tensor([[vocab.get_token_index(word, "tokens")]]))[0, 0]

    for word in ("city", "london", "japan"):  # GloVe words the training data lacks
        assert word not in TRAIN_WORDS and torch.equal(vector(word), GLOVE[word]), word
    # A training word that GloVe has started from its GloVe vector and was fine-tuned.
    assert "the" in TRAIN_WORDS and vocab.get_token_index("the", "tokens") < len(embedder.weight)
    assert not torch.allclose(vector("the"), GLOVE["the"], atol=1e-6)


def test_evaluate_extend_vocab_appends_the_new_words_to_the_extension(trained, tmp_path):
    """`allennlp evaluate --extend-vocab`: the words neither trained nor in GloVe get rows as with
    allennlp's `embedding` (random ones without `--embedding-sources-mapping`), after the
    extension; the trained rows and the GloVe vectors stay as they were."""
    _, run = trained
    archive = load_archive(str(run / "model.tar.gz"))
    model, vocab = archive.model, archive.model.vocab
    embedder = model.text_field_embedder.token_embedder_tokens
    weight, extension, size = embedder.weight.detach().clone(), embedder.extension.clone(), vocab.get_vocab_size()
    # What `allennlp evaluate --extend-vocab` does.
    vocab.extend_from_instances(archive.validation_dataset_reader.read(str(DEV)))
    model.extend_embedder_vocab()
    added = vocab.get_vocab_size() - size
    assert added == len(DEV_ONLY_WORDS - set(GLOVE))
    assert torch.equal(embedder.weight, weight) and embedder.weight.requires_grad
    assert embedder.extension.shape == (len(extension) + added, 50)
    assert torch.equal(embedder.extension[: len(extension)], extension)
    assert embedder.num_embeddings == vocab.get_vocab_size()
    word = sorted(DEV_ONLY_WORDS - set(GLOVE))[0]
    index = vocab.get_token_index(word)
    assert torch.equal(embedder(torch.tensor([[index]]))[0, 0], embedder.extension[index - len(weight)])

    # The command itself runs through.
    copy = tmp_path / "model.tar.gz"
    shutil.copy(run / "model.tar.gz", copy)
    metrics = evaluate_from_archive(str(copy), str(DEV), cuda_device=-1, extend_vocab=True)
    assert 0 <= metrics["f1-measure-overall"] <= 1


def build_lookup_tagger(extension: bool) -> Model:
    """
    A `ner_crf_tagger` on the fixture GloVe whose tag for a word is U-LOC when the word's vector
    is (close to) "paris"'s, O otherwise (and for the padding and unknown words, whose rows are
    zero). Its training vocabulary is "the" and "flights".
    """
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["the", "flights"], "tokens")
    vocab.add_tokens_to_namespace(TAGS, "labels")
    model = Model.from_params(vocab=vocab, params=Params(lookup_tagger_params(extension)))
    paris = GLOVE["paris"]
    with torch.no_grad():
        model.text_field_embedder.token_embedder_tokens.weight[:2].zero_()
        projection = model.tag_projection_layer._module
        projection.weight.zero_()
        projection.bias.zero_()
        projection.weight[vocab.get_token_index("U-LOC", "labels")] = 10 * paris
        projection.bias[vocab.get_token_index("O", "labels")] = 5 * paris.dot(paris)
        for parameter in model.crf.parameters():
            parameter.zero_()
    return model


def lookup_tagger_params(extension: bool) -> dict:
    return {
        "type": "ner_crf_tagger",
        "label_encoding": "BIOUL",
        "text_field_embedder": {"token_embedders": {"tokens": {
            "type": "ner_embedding", "embedding_dim": 50, "pretrained_file": str(GLOVE_FILE),
            "pretrained_extension": extension}}},
        "encoder": {"type": "pass_through", "input_dim": 50},
    }


def archive_lookup_tagger(directory: Path, extension: bool) -> Path:
    """Archived as `allennlp train` archives: the vocabulary as the model left it, its weights."""
    directory.mkdir()
    model = build_lookup_tagger(extension)
    config = {
        "dataset_reader": {"type": "ner_conll",
                           "token_indexers": {"tokens": {"type": "single_id", "lowercase_tokens": True}}},
        "model": lookup_tagger_params(extension),
        "train_data_path": "unused",
    }
    (directory / "config.json").write_text(json.dumps(config))
    model.vocab.save_to_files(str(directory / "vocabulary"))
    torch.save(model.state_dict(), directory / "best.th")
    archive_model(directory)
    return directory / "model.tar.gz"


def test_a_glove_word_unseen_in_training_changes_the_predicted_tag(tmp_path):
    """Through the loading of the service, Spark and ner-report (`load_archive_safely`) and the "ner" predictor."""
    assert "paris" in GLOVE and "paris" not in {"the", "flights"}
    tags = {}
    for extension in (True, False):
        archive = load_archive_safely(archive_lookup_tagger(tmp_path / f"extension_{extension}", extension))
        predictor = Predictor.from_archive(archive, "ner")
        tags[extension] = predictor.predict_json({"text": "Flights from Paris resume."})["tags"]
    assert tags[True] == ["O", "O", "U-LOC", "O", "O"]
    assert tags[False] == ["O"] * 5  # "paris" is the unknown word


def write_with_label(path: Path, source: Path, word: str, label: str) -> Path:
    lines = source.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.split()[:1] == [word])
    lines[index] = " ".join(lines[index].split()[:-1] + [label])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("split", ["validation", "test"])
def test_a_label_missing_from_the_training_data_stops_training_before_it_starts(split, tmp_path):
    assert "Dodoma" in file_words(DEV)
    odd = write_with_label(tmp_path / f"{split}.txt", DEV, "Dodoma", "I-FAC")
    run = tmp_path / "run"
    with pytest.raises(ConfigurationError) as error:
        train_model(config_params(**{f"{split}_data_path": str(odd), "trainer.num_epochs": 1}), run)
    message = str(error.value)
    assert str(odd) in message and "'U-FAC'" in message and "namespace 'labels'" in message
    assert not list(run.glob("metrics_epoch_*.json")) and not list(run.glob("*.th"))


def tagged_instance(tags: List[str], **other_fields) -> Instance:
    tokens = TextField([Token(f"w{i}") for i in range(len(tags))], {"tokens": SingleIdTokenIndexer()})
    fields = {"tokens": tokens, "tags": SequenceLabelField(tags, tokens)}
    fields.update({name: SequenceLabelField(labels, tokens, label_namespace=name)
                   for name, labels in other_fields.items()})
    return Instance(fields)


@pytest.mark.parametrize("encoding, added", [
    ("BIOUL", ["I-PER", "L-PER", "U-PER", "B-LOC", "I-LOC", "L-LOC"]),
    ("BIO", ["I-PER", "B-LOC"]),
    (None, []),
])
def test_the_tag_sets_vocabulary_adds_every_tag_of_each_entity_type_after_the_data_tags(encoding, added):
    tags = ["B-PER", "O", "U-LOC"] if encoding == "BIOUL" else ["B-PER", "O", "I-LOC"]
    vocab = Vocabulary.from_params(
        Params({"type": "ner_tag_sets", "label_encoding": encoding}), instances=[tagged_instance(tags)]
    )
    labels = list(vocab.get_token_to_index_vocabulary("labels"))
    assert sorted(labels[:3]) == sorted(tags) and labels[3:] == added
    assert vocab.get_vocab_size("tokens") == 5  # the rest is allennlp's from_instances


def test_unseen_labels_are_found_in_every_unpadded_namespace():
    vocab = Vocabulary.from_instances([tagged_instance(["O", "U-PER"])])
    instances = [tagged_instance(["O", "U-PER"]), tagged_instance(["U-FAC", "O"], pos_tags=["NN", "VB"])]
    # pos_tags: a namespace without an OOV token that the vocabulary never saw.
    assert unseen_labels(instances, vocab) == {("labels", "U-FAC"): 2, ("pos_tags", "NN"): 2, ("pos_tags", "VB"): 2}
    assert unseen_labels(instances[:1], vocab) == {}
