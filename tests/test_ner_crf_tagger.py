"""The Peters et al. 2018 model (conll2003_elmo.jsonnet) on the fixtures: train, save, load."""
import copy
import json

import pytest
import torch
from allennlp.common.testing import ModelTestCase
from allennlp.data import Batch

from config_env import CONFIGS, FIXTURES

# ModelTestCase compares the first batches of two data loaders: the bucket sampler must not shuffle.
SMALL_RUN = json.dumps({"trainer.num_epochs": 2, "data_loader.batch_sampler.batch_size": 4,
                        "data_loader.batch_sampler.shuffle": False, "trainer.callbacks": []})


@pytest.mark.usefixtures("fixture_env")
class TestNerCrfTaggerWithElmo(ModelTestCase):
    def setup_method(self):
        super().setup_method()

    def _set_up(self):
        self.set_up_model(CONFIGS / "conll2003_elmo.jsonnet", FIXTURES / "conll" / "train.iob1.txt", seed=3)

    def test_train_save_load_gives_identical_predictions(self):
        self._set_up()
        # The frozen biLM gets no gradient by design; everything else must learn.
        ignore = {name for name, _ in self.model.named_parameters() if "_elmo_bilm" in name or "_bilm" in name}
        self.ensure_model_can_train_save_and_load(
            self.param_file, gradients_to_ignore=ignore, overrides=SMALL_RUN, seed=3
        )

    def test_predictions_do_not_depend_on_batch_size_or_batch_mates(self):
        self._set_up()
        self.model.eval()
        instances = self.instances[:12]
        together = self.model.forward_on_instances(instances)
        for size in (1, 5):
            pieces = []
            for start in range(0, len(instances), size):
                pieces.extend(self.model.forward_on_instances(instances[start : start + size]))
            for a, b in zip(together, pieces):
                assert a["tags"] == b["tags"]
                length = len(a["tags"])  # logits are padded to the longest sentence in the batch
                torch.testing.assert_close(
                    torch.as_tensor(a["logits"])[:length], torch.as_tensor(b["logits"])[:length], atol=1e-5, rtol=0
                )

    def test_batched_and_stock_viterbi_decode_the_same_tags(self):
        self._set_up()
        self.model.eval()
        batch = Batch(self.instances)
        batch.index_instances(self.vocab)
        tensors = batch.as_tensor_dict()
        with torch.no_grad():
            output = self.model(**tensors)
        stock = super(type(self.model.crf), self.model.crf).viterbi_tags(output["logits"], output["mask"])
        assert output["tags"] == [path for path, _ in stock]

    def test_reports_conlleval_and_span_metrics(self):
        self._set_up()
        batch = Batch(self.instances)
        batch.index_instances(self.vocab)
        self.model(**batch.as_tensor_dict())
        metrics = self.model.get_metrics(reset=True)
        assert "f1-measure-overall" in metrics and "conlleval-f1-overall" in metrics
        assert 0.0 <= metrics["conlleval-f1-overall"] <= 1.0
        # The progress bar shows what a person reads while training; the per-type conlleval
        # figures stay in the metrics (and metrics.json), hidden from the bar by a leading "_".
        shown = {name for name in metrics if not name.startswith("_")}
        assert shown == {"accuracy", "accuracy3", "precision-overall", "recall-overall", "f1-measure-overall",
                         "conlleval-f1-overall"}
        hidden = {name for name in metrics if name.startswith("_")}
        assert {"_conlleval-precision-overall", "_conlleval-recall-overall", "_conlleval-accuracy"} <= hidden
        assert any(name.startswith("_conlleval-f1-") and name != "_conlleval-f1-overall" for name in hidden)


def test_batched_forward_equals_crf_taggers_forward_loss_tags_and_metrics(fixture_env):
    # ner_crf_tagger's own forward (batched Viterbi, the paths as one tensor) against crf_tagger's
    # forward with the stock decoder, same weights, same batch: the same outputs and metrics.
    from allennlp.common import Params
    from allennlp.data import DatasetReader, Vocabulary
    from allennlp.models import Model

    params = Params.from_file(str(CONFIGS / "conll2003_glove_char.jsonnet"))
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    instances = list(reader.read(FIXTURES / "conll" / "train.iob1.txt"))
    vocab = Vocabulary.from_instances(instances)
    model_params = params.pop("model").as_dict()
    torch.manual_seed(0)
    ours = Model.from_params(vocab=vocab, params=Params(copy.deepcopy(model_params)))
    stock = Model.from_params(vocab=vocab, params=Params({**copy.deepcopy(model_params), "viterbi": "stock"}))
    stock.load_state_dict(ours.state_dict())
    batch = Batch(instances)
    batch.index_instances(vocab)
    tensors = batch.as_tensor_dict()
    outputs = []
    for model in (ours, stock):
        model.eval()
        with torch.no_grad():
            outputs.append(model(**tensors))
    (our_output, stock_output) = outputs
    assert our_output["tags"] == stock_output["tags"]
    assert any(len(set(path)) > 1 for path in our_output["tags"])  # an untrained model that tags
    assert torch.equal(our_output["logits"], stock_output["logits"])
    assert torch.equal(our_output["loss"], stock_output["loss"])
    assert our_output["words"] == stock_output["words"]
    assert ours.get_metrics(reset=True) == stock.get_metrics(reset=True)


def _joined_sentences_model():
    """The config's tagger on the fixture read with document context, and its joined instances."""
    from allennlp.common import Params
    from allennlp.data import DatasetReader, Vocabulary
    from allennlp.models import Model

    params = Params.from_file(
        str(CONFIGS / "conll2003_glove_char.jsonnet"),
        params_overrides=json.dumps({"dataset_reader.document_context_tokens": 60}),
    )
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    instances = list(reader.read(FIXTURES / "conll" / "train.iob1.txt"))
    assert any(len(instance["metadata"]["sentence_lengths"]) > 1 for instance in instances)
    vocab = Vocabulary.from_instances(instances)
    torch.manual_seed(0)
    return Model.from_params(vocab=vocab, params=params.pop("model")), instances


def test_joined_sentences_are_decoded_as_separate_sentences(fixture_env):
    # A tagger that scores I-X far above every other tag everywhere: its best valid path over a
    # joined row would be one entity across all its sentences. Each sentence must instead be
    # tagged as it could stand alone: an entity that starts and ends within it.
    model, instances = _joined_sentences_model()
    labels = model.vocab.get_token_to_index_vocabulary("labels")
    kind = next(k for k in ("PER", "ORG", "LOC", "MISC") if all(f"{p}-{k}" in labels for p in "BILU"))
    bias = model.tag_projection_layer._module.bias
    with torch.no_grad():
        bias.fill_(-5.0)
        bias[labels[f"I-{kind}"]] = 5.0
    model.eval()
    checked = 0
    for instance, output in zip(instances, model.forward_on_instances(instances)):
        start = 0
        for length in instance["metadata"]["sentence_lengths"]:
            tags = output["tags"][start:start + length]
            start += length
            assert tags[0][:2] not in ("I-", "L-") and tags[-1][:2] not in ("B-", "I-"), tags
            if length >= 3:  # the best path that stays within the sentence
                assert tags == [f"B-{kind}"] + [f"I-{kind}"] * (length - 2) + [f"L-{kind}"]
                checked += 1
    assert checked > len(instances)


def test_boundary_scores_forbid_what_cannot_end_or_start_a_sentence(fixture_env):
    model, _ = _joined_sentences_model()
    labels = model.vocab.get_index_to_token_vocabulary("labels")
    logits = torch.zeros(2, 6, len(labels))
    assert model.crf.sentence_boundary_scores(logits, [None, [6]]) is None  # nothing joined
    scores = model.crf.sentence_boundary_scores(logits, [[2, 3, 1], None])
    forbidden = {(row, position, labels[tag]) for row, position, tag in (scores == -10000.0).nonzero().tolist()}
    assert torch.all((scores == 0) | (scores == -10000.0))
    may_not_end = {tag for tag in labels.values() if tag[:2] in ("B-", "I-")}
    may_not_start = {tag for tag in labels.values() if tag[:2] in ("I-", "L-")}
    # Sentences end at positions 1 and 4 and start at 2 and 5 of row 0; row 1 is one sentence.
    assert forbidden == {(0, 1, t) for t in may_not_end} | {(0, 4, t) for t in may_not_end} | {
        (0, 2, t) for t in may_not_start} | {(0, 5, t) for t in may_not_start}
    # Training counts only the paths the file's sentences can hold: the gold path, which always
    # can, gets more of the probability.
    tags = torch.full((2, 6), model.vocab.get_token_index("O", "labels"))
    mask = torch.ones(2, 6, dtype=torch.bool)
    torch.manual_seed(1)
    logits = torch.randn(2, 6, len(labels))
    assert model.crf(logits + scores, tags, mask) > model.crf(logits, tags, mask)


def test_joined_sentences_with_the_stock_decoder_are_refused(fixture_env):
    from allennlp.data import Batch

    model, instances = _joined_sentences_model()
    model.viterbi = "stock"
    batch = Batch([next(i for i in instances if len(i["metadata"]["sentence_lengths"]) > 1)])
    batch.index_instances(model.vocab)
    with pytest.raises(ValueError, match='need viterbi="batched"'):
        model(**batch.as_tensor_dict())
