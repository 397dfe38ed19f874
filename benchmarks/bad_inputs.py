"""
The bad-input catalogue: writes each malformed file to a temporary directory, reads it with the
reader a user would use, and prints the error the user sees (a Markdown table for the README).

    python benchmarks/bad_inputs.py
"""
import tempfile
from pathlib import Path

from ner_elmo.data.dataset_readers.conll_ner import ConllNerDatasetReader
from ner_elmo.data.dataset_readers.gmb_csv import GmbCsvDatasetReader

GOOD = "-DOCSTART- -X- -X- O\n\nAnna NNP B-NP I-PER\nsings VBZ B-VP O\n\n"
CONLL_CASES = {
    "one column where tags are required": GOOD + "Paris\n",
    "truncated last line (3 of 4 columns)": GOOD + "Paris NNP I-NP",
    "mixed separators": "Anna\tNNP\tB-NP\tI-PER\nsings VBZ B-VP O\n",
    "tag `B-` with no type": "Anna NNP B-NP B-\n",
    "unknown prefix `X-PER`": "Anna NNP B-NP X-PER\n",
    "sentence on one line (split wrongly)": "Anna sings in Paris NNP VBZ IN NNP O O O I-LOC\n",
    "undecodable bytes": b"Anna NNP B-NP I-PER\nM\xfcnchen NNP B-NP I-LOC\n",
    "UTF-8 byte-order mark (accepted)": "\ufeffAnna NNP B-NP I-PER\n",
    "empty file": "",
    "only -DOCSTART-": "-DOCSTART- -X- -X- O\n\n",
}
GMB_HEADER = "Sentence #,Word,POS,Tag\r\n"
GMB_CASES = {
    "missing column": "Sentence #,Word,Tag\r\nSentence: 1,Anna,B-per\r\n",
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


def main():
    with tempfile.TemporaryDirectory() as tmp:
        print("| file | case | what the user sees |\n|---|---|---|")
        for reader, name, cases in (
            (ConllNerDatasetReader(), "bad.conll", CONLL_CASES),
            (GmbCsvDatasetReader(), "bad.csv", GMB_CASES),
        ):
            for case, content in cases.items():
                path = Path(tmp) / name
                path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
                message = first_error(reader, path).replace(str(tmp) + "/", "").replace("\n", " ")
                print(f"| {name} | {case} | {message} |")


if __name__ == "__main__":
    main()
