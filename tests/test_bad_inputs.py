"""
The bad-input and configuration-error tables of docs/reliability.md, row by row: each malformed
file is written to a temporary directory and read with the reader a user would use, each wrong
setting builds the component it configures, and what the user sees must be what the page's row
says, word for word. The page is the one copy of the messages: a changed message fails here
until the page says the new one, and every row needs a case below (and every case a row).
"""
from typing import Dict, Tuple

import pytest
from allennlp.common import Params
from allennlp.data import Vocabulary
from allennlp.models import Model
from allennlp.modules.token_embedders import TokenEmbedder

from conftest import FIXTURES, REPO_ROOT
from ner_elmo.data.dataset_readers.ner_conll import NerConllDatasetReader
from ner_elmo.data.dataset_readers.ner_gmb_csv import NerGmbCsvDatasetReader
from ner_elmo.modules.token_embedders.ner_elmo import NerElmoTokenEmbedder

PAGE = REPO_ROOT / "docs" / "reliability.md"

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
FILE_CASES = {("bad.conll", case): content for case, content in CONLL_CASES.items()}
FILE_CASES.update({("bad.csv", case): content for case, content in GMB_CASES.items()})
READERS = {"bad.conll": NerConllDatasetReader, "bad.csv": lambda: NerGmbCsvDatasetReader(split="all")}


def elmo(options=FIXTURES / "elmo" / "options.json", weights=FIXTURES / "elmo" / "lm_weights.hdf5"):
    return lambda: NerElmoTokenEmbedder(str(options), str(weights))


def glove(path: str):
    def build():
        vocab = Vocabulary()
        vocab.add_tokens_to_namespace(["the"], "tokens")
        params = Params({"type": "ner_embedding", "embedding_dim": 50, "pretrained_file": path})
        return TokenEmbedder.from_params(params, vocab=vocab)

    return build


def tagger(reader_encoding: str, model_encoding: str):
    def build():
        reader = NerConllDatasetReader(label_encoding=reader_encoding)
        vocab = Vocabulary.from_instances(reader.read(str(FIXTURES / "conll" / "dev.iob1.txt")))
        embedder = {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 4}}}
        params = {"type": "ner_crf_tagger", "label_encoding": model_encoding, "text_field_embedder": embedder,
                  "encoder": {"type": "pass_through", "input_dim": 4}}
        return Model.from_params(vocab=vocab, params=Params(params))

    return build


UNREACHABLE = "http://127.0.0.1:9/elmo_weights.hdf5"
# (setting, case): (its value, what builds the component). The missing files are relative names
# in an empty working directory; a NER_ELMO_* value is set as the configs would read it.
CONFIG_CASES = {
    ("NER_ELMO_CONLL_TRAIN", "missing data file"): ("eng.train", lambda: list(NerConllDatasetReader().read("eng.train"))),
    ("NER_ELMO_ELMO_OPTIONS", "missing ELMo file"): ("options.json", elmo(options="options.json")),
    ("NER_ELMO_ELMO_WEIGHTS", "unreachable ELMo URL (offline)"): (UNREACHABLE, elmo(weights=UNREACHABLE)),
    ("NER_ELMO_GLOVE", "missing GloVe file"): ("glove.6B.50d.txt.gz", glove("glove.6B.50d.txt.gz")),
    ("label_encoding", "reader writes BIO, model expects BIOUL"): ("BIO", tagger("BIO", "BIOUL")),
    ("label_encoding", "reader writes BIOUL, model expects BIO"): ("BIOUL", tagger("BIOUL", "BIO")),
}


def documented_rows(first_header: str) -> Dict[Tuple[str, str], str]:
    """{(first cell, case): what the user sees} of the page's table whose header starts so."""
    rows: Dict[Tuple[str, str], str] = {}
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"| {first_header} | case | what the user sees |")
    for line in lines[start + 2 :]:
        if not line.startswith("| "):
            break
        first, case, seen = line[2:-2].split(" | ", 2)
        rows[first.strip("`"), case] = seen
    return rows


def what_the_user_sees(run) -> str:
    """`run()`'s answer, or the error it raises as the table shows it."""
    try:
        return run()
    except Exception as error:  # noqa: BLE001 - the message is what the table shows
        return f"`{type(error).__name__}: {error}`"


def test_every_documented_row_has_a_case_and_every_case_a_row():
    assert set(documented_rows("file")) == set(FILE_CASES)
    assert set(documented_rows("setting")) == set(CONFIG_CASES)


@pytest.mark.parametrize("file_name, case", list(FILE_CASES))
def test_a_bad_file_gives_the_documented_message(file_name, case, tmp_path):
    content = FILE_CASES[file_name, case]
    path = tmp_path / file_name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))

    def read():
        return f"reads {len(list(READERS[file_name]().read(str(path))))} sentence(s)"

    seen = what_the_user_sees(read).replace(f"{tmp_path}/", "").replace("\n", " ")
    assert seen == documented_rows("file")[file_name, case]


@pytest.mark.parametrize("setting, case", list(CONFIG_CASES))
def test_a_configuration_error_gives_the_documented_message(setting, case, tmp_path, monkeypatch):
    value, build = CONFIG_CASES[setting, case]
    monkeypatch.chdir(tmp_path)  # an empty directory: the relative names are missing files
    if setting.startswith("NER_ELMO_"):
        monkeypatch.setenv(setting, value)
    def run():
        build()
        return "no error"

    seen = what_the_user_sees(run)
    assert seen == documented_rows("setting")[setting, case]
