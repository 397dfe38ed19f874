import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader

from ner_elmo.data.dataset_readers.ner_gmb_csv import NerGmbCsvDatasetReader, gmb_split
from ner_elmo.data.tag_schemes import to_spans
from reader_checks import read_error, sentences_read_and_loaded, write_file

HEADER = "Sentence #,Word,POS,Tag\r\n"


def read(path, **options):
    options.setdefault("split", "all")
    return list(NerGmbCsvDatasetReader(**options).read(str(path)))


def words_and_tags(instances):
    return [(instance["metadata"]["words"], instance["tags"].labels) for instance in instances]


def write(tmp_path: Path, content, name="ner.csv") -> str:
    return write_file(tmp_path / name, content, "latin-1")


@pytest.fixture(scope="module")
def fixture_csv(fixtures_dir) -> str:
    return str(fixtures_dir / "gmb" / "ner_dataset.csv")


def test_fixture_counts_and_entity_types(fixture_csv):
    instances = read(fixture_csv)
    assert len(instances) == 30
    assert sum(len(instance["tokens"]) for instance in instances) == 313
    types = Counter(label for instance in instances for label, _, _ in to_spans(instance["tags"].labels, "BIOUL"))
    assert types == {"geo": 17, "tim": 12, "gpe": 7, "org": 7, "per": 5, "art": 3, "eve": 3, "nat": 2}


def test_fixture_words_exactly(fixture_csv):
    sentences = words_and_tags(read(fixture_csv, label_encoding="BIOUL"))
    assert sentences[0] == (
        ["Officials", "in", "Kampala", "say", "the", "drought", "has", "killed", "1,500", "cattle", "."],
        ["O", "O", "U-geo", "O", "O", "O", "O", "O", "O", "O", "O"],
    )
    assert sentences[3][0][:3] == ["Forecaster", "Jens", "Müller"]
    assert sentences[3][1][:3] == ["O", "B-per", "L-per"]
    assert sentences[6] == (
        ["The", "band", "NA", "released", "its", "album", "in", "March", "."],
        ["O", "O", "U-org", "O", "O", "O", "O", "U-tim", "O"],
    )
    assert sentences[7][0][3] == "NA"
    assert sentences[8][0] == [
        "Programmers", "say", "the", "value", "null", "is", "not", "the", "same", "as", "nan", "or", "None", ".",
    ]
    assert sentences[12][0] == ["Oil", "prices", "rose", "to", '"', "record", '"', "levels", "on", "Tuesday", "."]
    assert sentences[19][0][:5] == ["The", "café", "owner", ",", "Amélie"]
    assert sentences[22] == (
        ["British", "Prime", "Minister", "Alan", "Grey", "condemned", "the", "violence", "."],
        ["U-gpe", "B-per", "I-per", "I-per", "L-per", "O", "O", "O", "O"],
    )
    bio = words_and_tags(read(fixture_csv, label_encoding="BIO"))
    assert bio[22][1] == ["B-gpe", "B-per", "I-per", "I-per", "I-per", "O", "O", "O", "O"]
    assert bio[28][0] == ["About", "2,000", "athletes", "from", "40", "countries", "will", "compete", "."]


def test_pos_as_tags_or_feature(fixture_csv):
    instances = read(fixture_csv, tag_label="pos", feature_labels=["ner"], label_encoding="BIOUL")
    assert instances[12]["tags"].labels == ["NN", "NNS", "VBD", "TO", "``", "NN", "''", "NNS", "IN", "NNP", "."]
    assert instances[12]["ner_tags"].labels == ["O"] * 9 + ["U-tim", "O"]
    assert instances[12]["ner_tags"]._label_namespace == "ner_tags"
    features = read(fixture_csv, feature_labels=["pos"])
    assert features[0]["pos_tags"].labels[:3] == ["NNS", "IN", "NNP"]


def test_split_is_the_documented_hash(fixture_csv):
    def documented(sentence_id, seed=13):
        u = int(hashlib.sha256(f"{seed}:{sentence_id}".encode()).hexdigest()[:16], 16) / 16**16
        return "train" if u < 0.8 else "validation" if u < 0.9 else "test"

    assert [documented(number) for number in range(1, 200)] == [gmb_split(number) for number in range(1, 200)]
    assert [number for number in range(1, 31) if gmb_split(number) == "validation"] == [3, 5, 14, 28]
    assert [number for number in range(1, 31) if gmb_split(number) == "test"] == [21, 30]
    assert gmb_split(7, (0.0, 0.0, 1.0)) == "test" and gmb_split(7, (1.0, 0.0, 0.0)) == "train"
    assert [gmb_split(n, split_seed=14) for n in range(1, 31)] != [gmb_split(n) for n in range(1, 31)]


def test_splits_are_disjoint_cover_the_file_and_keep_file_order(fixture_csv):
    everything = words_and_tags(read(fixture_csv))
    splits = {split: words_and_tags(read(fixture_csv + "#" + split)) for split in ("train", "validation", "test")}
    assert [len(splits[split]) for split in ("train", "validation", "test")] == [24, 4, 2]
    assert [words[:3] for words, _ in splits["validation"]] == [
        ["Hurricane", "Selma", "struck"], ["The", "Winter", "Harvest"],
        ["The", "Petrola", "company"], ["The", "Spring", "Games"],
    ]
    assert [words[0] for words, _ in splits["test"]] == ["Scientists", "Officials"]
    expected_train = [sentence for number, sentence in enumerate(everything, 1) if number not in (3, 5, 14, 28, 21, 30)]
    assert splits["train"] == expected_train
    # The `split` argument does the same; a path suffix wins over it.
    assert words_and_tags(read(fixture_csv, split="validation")) == splits["validation"]
    assert words_and_tags(read(fixture_csv + "#test", split="validation")) == splits["test"]
    assert words_and_tags(read(fixture_csv + "#all", split="validation")) == everything


def test_split_ratios_and_seed(fixture_csv):
    assert len(read(fixture_csv, split="train", split_ratios=[1, 0, 0])) == 30
    assert len(read(fixture_csv, split="test", split_ratios=[0, 0, 1])) == 30
    other_seed = [words for words, _ in words_and_tags(read(fixture_csv, split="validation", split_seed=14))]
    assert other_seed == [
        words for number, (words, _) in enumerate(words_and_tags(read(fixture_csv)), 1)
        if gmb_split(number, split_seed=14) == "validation"
    ]


def test_a_path_without_a_split_is_refused_unless_all_is_asked_for(fixture_csv):
    # Train and validation paths without suffixes would read the same sentences twice.
    with pytest.raises(ConfigurationError, match=(
        rf"^{re.escape(fixture_csv)}: no split chosen for the GMB file, which has no official one: add "
        rf"'#train', '#validation' or '#test' to the data path \({re.escape(fixture_csv)}#train\), or set the "
        r"reader's split; split 'all' reads every sentence \(never validate on what you train on\)$"
    )):
        list(NerGmbCsvDatasetReader().read(fixture_csv))
    assert len(list(NerGmbCsvDatasetReader(split="all").read(fixture_csv))) == 30
    assert len(list(NerGmbCsvDatasetReader().read(fixture_csv + "#all"))) == 30


def test_split_path():
    assert NerGmbCsvDatasetReader.split_path("data/ner.csv#validation") == ("data/ner.csv", "validation")
    assert NerGmbCsvDatasetReader.split_path("data/ner.csv") == ("data/ner.csv", None)
    assert NerGmbCsvDatasetReader.split_path("data/a#b.csv") == ("data/a#b.csv", None)


def test_quoted_fields_crlf_and_forward_fill(tmp_path):
    text = (
        HEADER
        + 'Sentence: 7,"Hello, world",UH,O\r\n,NA,NNP,B-org\r\n,null,NN,I-org\r\n'
        + 'Sentence: 2,nan,NN,O\r\n,None,NN,O\r\n,"say ""hi""",VB,O\r\n, ,NN,O\r\n'
    )
    assert words_and_tags(read(write(tmp_path, text), label_encoding="BIO")) == [
        (["Hello, world", "NA", "null"], ["O", "B-org", "I-org"]),
        (["nan", "None", 'say "hi"', " "], ["O", "O", "O", "O"]),
    ]


def test_line_numbers_count_quoted_line_breaks(tmp_path):
    path = write(tmp_path, HEADER + 'Sentence: 1,"two\r\nlines",NN,O\r\n,Peru,NNP,X-geo\r\n')
    assert error_of(path).startswith(f"{path}, line 4: column 'Tag': invalid tag 'X-geo'")
    path = write(tmp_path, HEADER + 'Sentence: 1,"two\r\nlines",NN,O\r\n,Peru,NNP,B-geo\r\n', "ok.csv")
    assert words_and_tags(read(path, label_encoding="BIO")) == [(["two\r\nlines", "Peru"], ["O", "B-geo"])]


def test_extra_columns_and_order_do_not_matter(tmp_path):
    text = "Tag,Word,Sentence #,POS,Shape\nB-geo,Oslo,Sentence: 1,NNP,Xx\nO,.,,.,.\n"
    assert words_and_tags(read(write(tmp_path, text))) == [(["Oslo", "."], ["U-geo", "O"])]


# ------------------------------------------------------------------------------------------
# Errors name the file and the 1-based line.


def error_of(path, **options) -> str:
    return read_error(read, path, **options)


def test_missing_column(tmp_path):
    path = write(tmp_path, "Sentence #,Word,POS\r\nSentence: 1,Oslo,NNP\r\n")
    assert error_of(path) == (
        f"{path}, line 1: missing column 'Tag': the header has 'Sentence #', 'Word', 'POS'; "
        "expected 'Sentence #,Word,POS,Tag'"
    )
    assert read(path, tag_label="pos")[0]["tags"].labels == ["NNP"]


def test_missing_file(tmp_path):
    path = tmp_path / "ner_dataset.csv"
    with pytest.raises(FileNotFoundError, match=f"^file {re.escape(str(path))} not found$"):
        read(f"{path}#train")


def test_sentence_id_that_is_not_a_number(tmp_path):
    path = write(tmp_path, HEADER + "Sentence: 1,Oslo,NNP,B-geo\r\n,.,.,O\r\nSentence: x,Hi,UH,O\r\n")
    assert error_of(path) == f"{path}, line 4: sentence id 'Sentence: x' is not 'Sentence: <number>'"


def test_first_row_without_sentence_id(tmp_path):
    path = write(tmp_path, HEADER + ",Oslo,NNP,B-geo\r\n")
    assert error_of(path) == f"{path}, line 2: the first data row has no sentence id in column 'Sentence #'"


def test_repeated_sentence_id(tmp_path):
    path = write(tmp_path, HEADER + "Sentence: 1,Oslo,NNP,B-geo\r\nSentence: 2,Hi,UH,O\r\nSentence: 1,Yes,UH,O\r\n")
    assert error_of(path) == f"{path}, line 4: sentence id 1 was already used on line 2"


def test_empty_file_and_header_only(tmp_path):
    path = write(tmp_path, "")
    assert error_of(path) == f"{path}, line 1: the file is empty: expected the header 'Sentence #,Word,POS,Tag'"
    path = write(tmp_path, HEADER, "header.csv")
    assert error_of(path) == f"{path}, line 1: no data rows: the file holds only its header"


def test_undecodable_byte_with_a_declared_encoding(tmp_path):
    path = write(tmp_path, (HEADER + "Sentence: 1,Oslo,NNP,B-geo\r\n,Z\xfcrich,NNP,B-geo\r\n").encode("latin-1"))
    assert error_of(path, encoding="utf-8") == (
        f"{path}, line 3: cannot decode byte 0xfc (byte 3 of the line) as utf-8: set the reader's "
        "`encoding` to the file's encoding"
    )
    assert read(path)[0]["metadata"]["words"] == ["Oslo", "Zürich"]  # latin-1, the default


def test_invalid_tag(tmp_path):
    path = write(tmp_path, HEADER + "Sentence: 1,Oslo,NNP,B-geo\r\n\r\nSentence: 2,in,IN,O\r\n,Peru,NNP,X-geo\r\n")
    assert error_of(path) == (
        f"{path}, line 5: column 'Tag': invalid tag 'X-geo': unknown prefix 'X'; expected 'O' or one of "
        "the prefixes B-, I- (BIO) followed by an entity type, e.g. 'B-PER'"
    )
    path = write(tmp_path, HEADER + "Sentence: 1,Oslo,NNP,B-\r\n", "empty_type.csv")
    assert error_of(path).startswith(f"{path}, line 2: column 'Tag': invalid tag 'B-': empty entity type;")


def test_wrong_field_count_and_empty_word(tmp_path):
    path = write(tmp_path, HEADER + "Sentence: 1,Oslo,NNP,B-geo\r\n,in,IN\r\n")
    assert error_of(path) == f"{path}, line 3: found 3 fields, expected 4 (Sentence #,Word,POS,Tag): ['', 'in', 'IN']"
    path = write(tmp_path, HEADER + "Sentence: 1,Oslo,NNP,B-geo\r\n,,IN,O\r\n", "empty_word.csv")
    assert error_of(path) == f"{path}, line 3: empty word in column 'Word'"


def test_unclosed_quote_is_reported_where_it_opens(tmp_path):
    path = write(tmp_path, HEADER + 'Sentence: 1,Oslo,NNP,B-geo\r\n,"in,IN,O\r\n,Peru,NNP,B-geo\r\n', "open_quote.csv")
    assert error_of(path) == (
        f"{path}, line 3: found 2 fields, expected 4 (Sentence #,Word,POS,Tag): "
        "['', 'in,IN,O\\r\\n,Peru,NNP,B-geo\\r\\n']; a quote opened on this line may be unclosed"
    )
    # Past the csv module's field size limit (131,072 characters) the module itself objects.
    path = write(tmp_path, HEADER + 'Sentence: 1,Oslo,NNP,B-geo\r\n,"in,IN,O\r\n' + ",Peru,NNP,B-geo\r\n" * 10000, "long.csv")
    assert error_of(path) == (
        f"{path}, line 3: malformed CSV: field larger than field limit (131072); a quote opened on "
        "this line may be unclosed"
    )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"split": "dev"}, "unknown split 'dev': expected one of 'train', 'validation', 'test', 'all'"),
        ({"split_ratios": [0.5, 0.5]}, "split_ratios [0.5, 0.5]: expected three non-negative shares (train, validation, test) summing to 1"),
        ({"split_ratios": [0.9, 0.2, -0.1]}, "split_ratios [0.9, 0.2, -0.1]: expected three non-negative shares (train, validation, test) summing to 1"),
        ({"tag_label": "chunk"}, "unknown tag_label 'chunk': expected one of 'ner', 'pos'"),
        ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
    ],
)
def test_configuration_errors(options, message):
    with pytest.raises(ConfigurationError) as error:
        NerGmbCsvDatasetReader(**options)
    assert error.value.message == message


# ------------------------------------------------------------------------------------------
# AllenNLP integration.


def test_registered_and_built_from_config_keys(fixture_csv):
    reader = DatasetReader.from_params(
        Params({"type": "ner_gmb_csv", "split": "test", "split_ratios": [0.8, 0.1, 0.1], "split_seed": 13,
                "coding_scheme": "BIO", "label_encoding": "BIOUL"})
    )
    assert isinstance(reader, NerGmbCsvDatasetReader)
    assert [instance["metadata"]["words"][0] for instance in reader.read(fixture_csv)] == ["Scientists", "Officials"]


def test_multiprocess_loader_yields_each_instance_once(fixture_csv):
    reader = NerGmbCsvDatasetReader()
    path = fixture_csv + "#train"
    expected, seen = sentences_read_and_loaded(reader, path, batch_size=4)
    assert seen == expected
    assert sum(seen.values()) == 24


# ------------------------------------------------------------------------------------------
# The Kaggle file itself (skipped where ../shared is absent).


@pytest.mark.slow
def test_kaggle_file_splits(shared_dir):
    path = shared_dir / "data" / "gmb" / "ner_dataset.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    reader = NerGmbCsvDatasetReader()
    counts = {}
    for split in ("train", "validation", "test"):
        instances = list(reader.read(f"{path}#{split}"))
        counts[split] = (len(instances), sum(len(instance["tokens"]) for instance in instances))
    # Fixed numbers: the split is the same on every run and machine (see `gmb_split`).
    assert counts == {"train": (38370, 839179), "validation": (4788, 104612), "test": (4801, 104784)}
    assert sum(sentences for sentences, _ in counts.values()) == 47959
    assert sum(tokens for _, tokens in counts.values()) == 1048575
