"""
A tiny tagger whose predictions are a word lookup, and the `"ner"` predictor around it: the
predictor tests know every output in advance.
"""
import json
from pathlib import Path
from typing import Dict, Optional

import torch
from allennlp.common import Params
from allennlp.data import Vocabulary
from allennlp.models import Model
from allennlp.models.archival import archive_model

from ner_elmo.data.dataset_readers.ner_conll import NerConllDatasetReader
from ner_elmo.predictors.ner import NerPredictor

TAGS = ["O"] + [f"{p}-{t}" for t in ("PER", "LOC", "ORG") for p in "BILU"]
# The tiny model tags each word by a lookup: emissions are one-hot rows, transitions are zero.
LEXICON: Dict[str, str] = {
    "Maria": "B-PER",
    "Lindqvist": "L-PER",
    "Zoë": "U-PER",
    "Oslo": "U-LOC",
    "Nairobi": "U-LOC",
    "ירושלים": "U-LOC",
    "القاهرة": "U-LOC",
    "Kestrel": "B-ORG",
    "Trading": "I-ORG",
    "Company": "L-ORG",
    "Ørsted": "U-ORG",
    "😀": "U-ORG",
}


def tagger_params(model_type: str = "ner_crf_tagger", label_encoding: Optional[str] = "BIOUL") -> dict:
    params = {
        "type": model_type,
        "text_field_embedder": {
            "token_embedders": {"tokens": {"type": "embedding", "embedding_dim": len(TAGS)}}
        },
        "encoder": {"type": "pass_through", "input_dim": len(TAGS)},
    }
    if label_encoding is not None:
        params["label_encoding"] = label_encoding
    return params


def build_tagger(
    model_type: str = "ner_crf_tagger",
    label_encoding: Optional[str] = "BIOUL",
    lexicon: Dict[str, str] = LEXICON,
) -> Model:
    """A `ner_crf_tagger` (or another tagger) whose predictions follow `lexicon` (others: O)."""
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(list(lexicon), "tokens")
    vocab.add_tokens_to_namespace(TAGS, "labels")
    model = Model.from_params(vocab=vocab, params=Params(tagger_params(model_type, label_encoding)))
    with torch.no_grad():
        emissions = model.text_field_embedder.token_embedder_tokens.weight
        emissions.zero_()
        outside = vocab.get_token_index("O", "labels")
        for index in range(vocab.get_vocab_size("tokens")):
            word = vocab.get_token_from_index(index, "tokens")
            emissions[index, vocab.get_token_index(lexicon.get(word, "O"), "labels")] = 10.0
        emissions[0, outside] = 10.0  # padding
        projection = model.tag_projection_layer._module
        projection.weight.copy_(torch.eye(len(TAGS)))
        projection.bias.zero_()
        if hasattr(model, "crf"):
            for parameter in model.crf.parameters():
                parameter.zero_()
    return model


def make_predictor(model: Model, **kwargs) -> NerPredictor:
    return NerPredictor(model, NerConllDatasetReader(), **kwargs)


def write_archive(directory: Path, model_type: str = "ner_crf_tagger") -> Path:
    """`directory/model.tar.gz`: the tiny tagger archived as `allennlp train` archives a model."""
    model = build_tagger(model_type)
    config = {"dataset_reader": {"type": "ner_conll"}, "model": tagger_params(model_type), "train_data_path": "unused"}
    (directory / "config.json").write_text(json.dumps(config))
    model.vocab.save_to_files(str(directory / "vocabulary"))
    torch.save(model.state_dict(), directory / "best.th")
    archive_model(directory)
    return directory / "model.tar.gz"
