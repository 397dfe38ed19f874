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
