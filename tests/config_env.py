"""Environment that points the training configs at the bundled fixtures (what `make demo` sets)."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "fixtures"
CONFIGS = REPO_ROOT / "training_config"

FIXTURE_ENV = {
    "NER_ELMO_CONLL_TRAIN": str(FIXTURES / "conll" / "train.iob1.txt"),
    "NER_ELMO_CONLL_DEV": str(FIXTURES / "conll" / "dev.iob1.txt"),
    "NER_ELMO_CONLL_TEST": str(FIXTURES / "conll" / "dev.iob1.txt"),
    "NER_ELMO_GMB_CSV": str(FIXTURES / "gmb" / "ner_dataset.csv"),
    "NER_ELMO_SPANS_TRAIN": str(FIXTURES / "spans" / "doccano.jsonl"),
    "NER_ELMO_SPANS_DEV": str(FIXTURES / "spans" / "label_studio.json"),
    "NER_ELMO_SPANS_TEST": str(FIXTURES / "spans" / "label_studio.json"),
    "NER_ELMO_ELMO_OPTIONS": str(FIXTURES / "elmo" / "options.json"),
    "NER_ELMO_ELMO_WEIGHTS": str(FIXTURES / "elmo" / "lm_weights.hdf5"),
    "NER_ELMO_ELMO_DIM": "32",
    "NER_ELMO_GLOVE": str(FIXTURES / "glove" / "tiny.50d.txt"),
}
