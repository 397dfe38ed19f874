"""
A tiny invented NER corpus (IOB1, CoNLL-2003 columns) and a training config for it: the
package's reader and tagger without ELMo, trained in seconds by the report and callback tests.
"""
from pathlib import Path

from allennlp.training.callbacks.callback import TrainerCallback

# Invented sentences (IOB1, CoNLL-2003 columns).
TINY_SENTENCES = [
    [("Anna", "I-PER"), ("Berg", "I-PER"), ("visited", "O"), ("Tallinn", "I-LOC"), (".", "O")],
    [("Lumo", "I-ORG"), ("Foods", "I-ORG"), ("hired", "O"), ("Omar", "I-PER"), ("Said", "I-PER"),
     ("in", "O"), ("Porto", "I-LOC"), (".", "O")],
    [("The", "O"), ("Danish", "I-MISC"), ("team", "O"), ("beat", "O"), ("Kestrel", "I-ORG"),
     ("United", "I-ORG"), ("."  , "O")],
    [("Rita", "I-PER"), ("Vos", "I-PER"), ("left", "O"), ("Nordvik", "I-ORG"), ("Bank", "I-ORG"),
     ("for", "O"), ("Lumo", "I-ORG"), ("Foods", "I-ORG"), (".", "O")],
    [("Flights", "O"), ("from", "O"), ("Porto", "I-LOC"), ("to", "O"), ("Tallinn", "I-LOC"),
     ("resume", "O"), ("on", "O"), ("Monday", "O"), (".", "O")],
    [("Omar", "I-PER"), ("Said", "I-PER"), ("praised", "O"), ("the", "O"), ("Danish", "I-MISC"),
     ("press", "O"), (".", "O")],
    [("Nordvik", "I-ORG"), ("Bank", "I-ORG"), ("opened", "O"), ("in", "O"), ("Lisbon", "I-LOC"),
     ("and", "O"), ("Riga", "I-LOC"), (".", "O")],
    [("Anna", "I-PER"), ("met", "O"), ("Rita", "I-PER"), ("Vos", "I-PER"), ("in", "O"),
     ("Riga", "I-LOC"), (".", "O")],
]


def write_conll(path: Path, sentences) -> Path:
    lines = ["-DOCSTART- -X- -X- O", ""]
    for sentence in sentences:
        lines.extend(f"{word} NNP I-NP {tag}" for word, tag in sentence)
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_config(train: Path, dev: Path) -> dict:
    """
    The package's reader and tagger without ELMo: word embeddings, a tiny BiLSTM, BIOUL, span
    F1 per type (`verbose_metrics`) and conlleval metrics.
    """
    return {
        "dataset_reader": {
            "type": "ner_conll",
            "coding_scheme": "IOB1",
            "label_encoding": "BIOUL",
            "token_indexers": {"tokens": {"type": "single_id", "lowercase_tokens": True}},
        },
        "train_data_path": str(train),
        "validation_data_path": str(dev),
        "model": {
            "type": "ner_crf_tagger",
            "label_encoding": "BIOUL",
            "verbose_metrics": True,
            "include_start_end_transitions": False,
            "text_field_embedder": {
                "token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 8}}
            },
            "encoder": {"type": "lstm", "input_size": 8, "hidden_size": 8, "bidirectional": True},
        },
        "data_loader": {"batch_size": 4, "shuffle": False},
        "trainer": {"num_epochs": 12, "optimizer": {"type": "adam", "lr": 0.03}, "cuda_device": -1},
    }


@TrainerCallback.register("test_crash_once_after_epoch")
class CrashOnceAfterEpoch(TrainerCallback):
    """Raises in `on_epoch` of `epoch` the first time only, before that epoch's checkpoint."""

    def __init__(self, serialization_dir: str, epoch: int, flag_file: str) -> None:
        super().__init__(serialization_dir)
        self.epoch = epoch
        self.flag_file = Path(flag_file)

    def on_epoch(self, trainer, metrics, epoch, is_primary=True, **kwargs) -> None:
        if epoch == self.epoch and not self.flag_file.exists():
            self.flag_file.touch()
            raise RuntimeError("simulated crash")
