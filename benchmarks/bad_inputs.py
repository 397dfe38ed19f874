"""
The bad-input catalogue: writes each malformed file to a temporary directory, reads it with the
reader a user would use, and prints the error the user sees (a Markdown table for docs/reliability.md);
then the configuration errors that stop a run before training (a second table).

    python benchmarks/bad_inputs.py
"""
import os
import tempfile
from pathlib import Path

from allennlp.common import Params
from allennlp.data import Vocabulary
from allennlp.models import Model
from allennlp.modules.token_embedders import TokenEmbedder

from ner_elmo.data.dataset_readers.conll_ner import ConllNerDatasetReader
from ner_elmo.data.dataset_readers.gmb_csv import GmbCsvDatasetReader
from ner_elmo.modules.token_embedders.ner_elmo_embedder import ElmoLayersTokenEmbedder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

GOOD = "-DOCSTART- -X- -X- O\n\nAnna NNP B-NP I-PER\nsings VBZ B-VP O\n\n"
CONLL_CASES = {
    "one column where tags are required": GOOD + "Paris\n",
    "truncated last line (3 of 4 columns)": GOOD + "Paris NNP I-NP",
    "mixed separators": "Anna\tNNP\tB-NP\tI-PER\nsings VBZ B-VP O\n",
    "tag `B-` with no type": "Anna NNP B-NP B-\n",
    "unknown prefix `X-PER`": "Anna NNP B-NP X-PER\n",
    "sentence on one line (split wrongly)": "Anna sings in Paris NNP VBZ IN NNP O O O I-LOC\n",
    "sentences on one line each, different lengths": (
        "Anna sings in Paris NNP VBZ IN NNP O O O I-LOC\nBob runs NNP VBZ I-PER O\n"
    ),
    "sentence on one tab-separated line": "Anna sings\tNNP VBZ\tO I-PER\n",
    "undecodable bytes": b"Anna NNP B-NP I-PER\nM\xfcnchen NNP B-NP I-LOC\n",
    "UTF-8 byte-order mark (accepted)": "\ufeffAnna NNP B-NP I-PER\n",
    "empty file": "",
    "only -DOCSTART-": "-DOCSTART- -X- -X- O\n\n",
}
GMB_HEADER = "Sentence #,Word,POS,Tag\r\n"
GMB_CASES = {
    "missing Tag column": "Sentence #,Word,POS\r\nSentence: 1,Anna,NNP\r\n",
    "POS column absent (not needed: accepted)": "Sentence #,Word,Tag\r\nSentence: 1,Anna,B-per\r\n",
    "non-numeric sentence id": GMB_HEADER + "Sentence: x,Anna,NNP,B-per\r\n",
    "first row without a sentence id": GMB_HEADER + ",Anna,NNP,B-per\r\n",
    "unknown tag prefix": GMB_HEADER + "Sentence: 1,Anna,NNP,Q-per\r\n",
    "empty file": "",
}


def first_error(reader, path):
    try:
        instances = list(reader.read(str(path)))
    except Exception as error:  # the message is what this table shows
        return f"`{type(error).__name__}: {error}`"
    return f"reads {len(instances)} sentence(s)"


def elmo(options=FIXTURES / "elmo" / "options.json", weights=FIXTURES / "elmo" / "lm_weights.hdf5"):
    return lambda: ElmoLayersTokenEmbedder(str(options), str(weights))


def glove(path):
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["the"], "tokens")
    params = Params({"type": "ner_embedding", "embedding_dim": 50, "pretrained_file": path})
    return lambda: TokenEmbedder.from_params(params, vocab=vocab)


def tagger(reader_encoding, model_encoding):
    def build():
        reader = ConllNerDatasetReader(label_encoding=reader_encoding)
        vocab = Vocabulary.from_instances(reader.read(str(FIXTURES / "conll" / "dev.iob1.txt")))
        embedder = {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 4}}}
        params = {"type": "ner_crf_tagger", "label_encoding": model_encoding, "text_field_embedder": embedder,
                  "encoder": {"type": "pass_through", "input_dim": 4}}
        return Model.from_params(vocab=vocab, params=Params(params))

    return build


UNREACHABLE = "http://127.0.0.1:9/elmo_weights.hdf5"
# (setting, its value, case, what builds the component)
CONFIG_CASES = [
    ("NER_ELMO_CONLL_TRAIN", "eng.train", "missing data file",
     lambda: list(ConllNerDatasetReader().read("eng.train"))),
    ("NER_ELMO_ELMO_OPTIONS", "options.json", "missing ELMo file", elmo(options="options.json")),
    ("NER_ELMO_ELMO_WEIGHTS", UNREACHABLE, "unreachable ELMo URL (offline)", elmo(weights=UNREACHABLE)),
    ("NER_ELMO_GLOVE", "glove.6B.50d.txt.gz", "missing GloVe file", glove("glove.6B.50d.txt.gz")),
    ("label_encoding", "BIO", "reader writes BIO, model expects BIOUL", tagger("BIO", "BIOUL")),
    ("label_encoding", "BIOUL", "reader writes BIOUL, model expects BIO", tagger("BIOUL", "BIO")),
]


def config_error(setting, value, build):
    saved = os.environ.get(setting)
    if setting.startswith("NER_ELMO_"):
        os.environ[setting] = value  # as the configs would read it
    try:
        build()
    except Exception as error:  # the message is what this table shows
        return f"`{type(error).__name__}: {error}`"
    finally:
        if saved is not None:
            os.environ[setting] = saved
        else:
            os.environ.pop(setting, None)
    return "no error"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        print("| file | case | what the user sees |\n|---|---|---|")
        for reader, name, cases in (
            (ConllNerDatasetReader(), "bad.conll", CONLL_CASES),
            (GmbCsvDatasetReader(split="all"), "bad.csv", GMB_CASES),
        ):
            for case, content in cases.items():
                path = Path(tmp) / name
                path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
                message = first_error(reader, path).replace(str(tmp) + "/", "").replace("\n", " ")
                print(f"| {name} | {case} | {message} |")
    print("\n| setting | case | what the user sees |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        here = os.getcwd()
        os.chdir(tmp)  # the missing files are relative names in an empty directory
        try:
            for setting, value, case, build in CONFIG_CASES:
                print(f"| `{setting}` | {case} | {config_error(setting, value, build)} |")
        finally:
            os.chdir(here)


if __name__ == "__main__":
    main()
