import pickle
import re
from pathlib import Path

import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader, Vocabulary
from allennlp.data.token_indexers import TokenCharactersIndexer
from allennlp.data.tokenizers import Token

from ner_elmo.data.dataset_readers.ner_conll import NerConllDatasetReader
from ner_elmo.data.errors import DataFormatError
from ner_elmo.data.tag_schemes import to_spans
from reader_checks import read_error, sentences_read_and_loaded, write_file

AUTO_EXPECTED = (
    "expected 'O' or one of the prefixes B-, I-, L-, U-, E-, S- followed by an entity type, "
    "e.g. 'B-PER'"
)


def read(path, **options):
    return list(NerConllDatasetReader(**options).read(str(path)))


def words_and(instances, field="tags"):
    return [(instance["metadata"]["words"], instance[field].labels) for instance in instances]


def write(tmp_path: Path, content, name="data.txt") -> str:
    return write_file(tmp_path / name, content, "utf-8")


# ------------------------------------------------------------------------------------------
# The fixtures, read exactly.


@pytest.mark.parametrize(
    "name, sentences, tokens, entities",
    [
        ("train.iob1.txt", 32, 325, 66),
        ("dev.iob1.txt", 24, 228, 49),
        ("bio_tab_crlf.txt", 5, 31, 7),
        ("bioul.txt", 4, 27, 8),
    ],
)
def test_fixture_counts(fixtures_dir, name, sentences, tokens, entities):
    instances = read(fixtures_dir / "conll" / name)
    assert len(instances) == sentences
    assert sum(len(instance["tokens"]) for instance in instances) == tokens
    assert sum(len(to_spans(instance["tags"].labels, "BIOUL")) for instance in instances) == entities


def test_iob1_fixture_in_each_output_scheme(fixtures_dir):
    path = fixtures_dir / "conll" / "train.iob1.txt"
    words = ["The", "Oslo", "Nairobi", "route", "reopens", "on", "Tuesday", "."]
    first = ["Kestrel", "Trading", "Company", "opened", "an", "office", "in", "Nairobi", "."]
    expected = {
        "BIOUL": (
            ["B-ORG", "I-ORG", "L-ORG", "O", "O", "O", "O", "U-LOC", "O"],
            ["O", "U-LOC", "U-LOC", "O", "O", "O", "O", "O"],
        ),
        "BIO": (
            ["B-ORG", "I-ORG", "I-ORG", "O", "O", "O", "O", "B-LOC", "O"],
            ["O", "B-LOC", "B-LOC", "O", "O", "O", "O", "O"],
        ),
        "IOB1": (
            ["I-ORG", "I-ORG", "I-ORG", "O", "O", "O", "O", "I-LOC", "O"],
            ["O", "I-LOC", "B-LOC", "O", "O", "O", "O", "O"],
        ),
    }
    for encoding, (first_tags, adjacent_tags) in expected.items():
        sentences = words_and(read(path, label_encoding=encoding))
        assert sentences[0] == (first, first_tags)
        assert sentences[3] == (words, adjacent_tags)
    assert read(path)[0]["tags"]._label_namespace == "labels"


def test_feature_columns_pos_unchanged_chunk_converted(fixtures_dir):
    instances = read(
        fixtures_dir / "conll" / "train.iob1.txt", feature_labels=["pos", "chunk"], label_encoding="BIOUL"
    )
    sentence = instances[4]
    assert sentence["metadata"]["words"] == [
        "Peter", "Novak", "joined", "the", "Geneva", "branch", "of", "Alder", "Insurance", "last", "year", ".",
    ]
    assert sentence["pos_tags"].labels == ["NNP", "NNP", "VBD", "DT", "NNP", "NN", "IN", "NNP", "NNP", "JJ", "NN", "."]
    assert sentence["pos_tags"]._label_namespace == "pos_tags"
    assert sentence["chunk_tags"].labels == [
        "B-NP", "L-NP", "U-VP", "B-NP", "I-NP", "L-NP", "U-PP", "B-NP", "L-NP", "B-NP", "L-NP", "O",
    ]
    assert sentence["chunk_tags"]._label_namespace == "chunk_tags"
    assert sentence["tags"].labels == ["B-PER", "L-PER", "O", "O", "U-LOC", "O", "O", "B-ORG", "L-ORG", "O", "O", "O"]
    assert set(sentence.fields) == {"tokens", "tags", "pos_tags", "chunk_tags", "metadata"}


def test_tag_label_pos_chunk_and_column_index(fixtures_dir):
    path = fixtures_dir / "conll" / "train.iob1.txt"
    assert read(path, tag_label="pos")[1]["tags"].labels[:5] == ["PRP$", "JJ", "NN", ",", "NNP"]
    assert read(path, tag_label="chunk", label_encoding="BIO")[7]["tags"].labels == ["B-NP", "B-NP"]
    by_index = words_and(read(path, tag_label=3))
    assert by_index == words_and(read(path, tag_label=-1)) == words_and(read(path))
    assert words_and(read(path, tag_label=2)) == words_and(read(path, tag_label="chunk"))


def test_bio_tab_crlf_with_byte_order_mark(fixtures_dir):
    path = fixtures_dir / "conll" / "bio_tab_crlf.txt"
    sentences = words_and(read(path, label_encoding="BIOUL"))
    assert sentences[0] == (["Åsa", "Berg", "moved", "to", "Zürich", "."], ["B-PER", "L-PER", "O", "O", "U-LOC", "O"])
    assert sentences[2] == (
        ["Winners", "Karin", "Aho", "Mikko", "Lund", "shared", "the", "prize", "."],
        ["O", "B-PER", "L-PER", "B-PER", "L-PER", "O", "O", "O", "O"],
    )
    assert sentences[3] == (["Helsinki"], ["U-LOC"])
    # The last line has no newline.
    assert sentences[4] == (["It", "rained", "in", "Bern", "on", "Sunday", "."], ["O", "O", "O", "U-LOC", "O", "O", "O"])
    iob1 = words_and(read(path, label_encoding="IOB1"))
    assert iob1[2][1] == ["O", "I-PER", "I-PER", "B-PER", "I-PER", "O", "O", "O", "O"]
    bio = words_and(read(path, label_encoding="BIO", coding_scheme="BIO", column_separator="tab"))
    assert [tags for _, tags in bio] == [
        ["B-PER", "I-PER", "O", "O", "B-LOC", "O"],
        ["O", "B-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "O", "O"],
        ["O", "B-PER", "I-PER", "B-PER", "I-PER", "O", "O", "O", "O"],
        ["B-LOC"],
        ["O", "O", "O", "B-LOC", "O", "O", "O"],
    ]


def test_bioul_three_columns(fixtures_dir):
    path = fixtures_dir / "conll" / "bioul.txt"
    sentences = words_and(read(path, label_encoding="BIO"))
    assert sentences[0] == (
        ["Ruth", "Adeyemi", "met", "Erik", "van", "Sand", "in", "Accra", "."],
        ["B-PER", "I-PER", "O", "B-PER", "I-PER", "I-PER", "O", "B-LOC", "O"],
    )
    assert sentences[2][1] == ["O", "B-LOC", "B-LOC", "O", "O", "O"]
    assert sentences[3] == (["Nothing", "happened", "."], ["O", "O", "O"])
    assert words_and(read(path, label_encoding="BIOUL", coding_scheme="BIOUL"))[1][1] == [
        "B-ORG", "L-ORG", "O", "O", "O", "U-LOC", "O", "U-LOC", "O",
    ]
    assert read(path, tag_label="pos")[1]["tags"].labels == ["NNP", "NNP", "VBZ", "VBN", "IN", "NNP", "CC", "NNP", "."]


def test_separators_line_ends_and_docstart(tmp_path):
    expected = [(["EU", "rejects", "German", "call"], ["U-ORG", "O", "U-MISC", "O"]), (["Peter", "Blackburn"], ["B-PER", "L-PER"])]
    variants = [
        "-DOCSTART- -X- -X- O\n\nEU I-ORG\nrejects O\nGerman I-MISC\ncall O\n\nPeter I-PER\nBlackburn I-PER\n\n",
        "EU\tI-ORG\r\nrejects\tO\r\nGerman\tI-MISC\r\ncall\tO\r\n\r\n\r\n\r\nPeter\tI-PER\r\nBlackburn\tI-PER",
        "EU   I-ORG  \nrejects O\nGerman I-MISC\ncall O\n-DOCSTART- -X- -X- O\nPeter I-PER\nBlackburn I-PER",
        "\ufeffEU I-ORG\nrejects O\nGerman I-MISC\ncall O\n \t \nPeter I-PER\nBlackburn I-PER\n",
    ]
    for number, text in enumerate(variants):
        assert words_and(read(write(tmp_path, text, f"v{number}.txt"))) == expected, text


def test_tab_separated_tokens_may_hold_spaces(tmp_path):
    path = write(tmp_path, "New York\tB-LOC\nis\tO\n")
    assert words_and(read(path)) == [(["New York", "is"], ["U-LOC", "O"])]
    assert words_and(read(path, column_separator="tab")) == [(["New York", "is"], ["U-LOC", "O"])]


def test_whitespace_separator_and_encoding(tmp_path):
    path = write(tmp_path, "Z\xfcrich\tI-LOC\nis O\n".encode("latin-1"))
    assert words_and(read(path, encoding="latin-1", column_separator="whitespace")) == [
        (["Zürich", "is"], ["U-LOC", "O"])
    ]


def test_untagged_files_with_tag_label_none(tmp_path):
    instances = read(write(tmp_path, "Anna\nflew\n\nHome\n"), tag_label=None)
    assert [instance["metadata"]["words"] for instance in instances] == [["Anna", "flew"], ["Home"]]
    assert set(instances[0].fields) == {"tokens", "metadata"}


def test_max_instances(fixtures_dir):
    assert len(read(fixtures_dir / "conll" / "dev.iob1.txt", max_instances=3)) == 3


# ------------------------------------------------------------------------------------------
# Errors name the file and the 1-based line.


def error_of(path, **options) -> str:
    return read_error(read, path, **options)


def test_one_column_where_tags_are_required(tmp_path):
    path = write(tmp_path, "EU B-ORG\nrejects\n")
    assert error_of(path) == f"{path}, line 2: found 1 column, expected 2 as on line 1: 'rejects'"
    path = write(tmp_path, "\n\nrejects\nEU B-ORG\n", "first.txt")
    assert error_of(path) == (
        f"{path}, line 3: found 1 column ('rejects'), expected a token followed by its tags, "
        "separated by spaces or a tab"
    )


def test_inconsistent_column_count(tmp_path):
    path = write(tmp_path, "EU NNP B-ORG\n\nrejects VBZ O\ncall NN O extra\n")
    assert error_of(path) == f"{path}, line 4: found 4 columns, expected 3 as on line 1: 'call NN O extra'"


ONE_TOKEN_PER_LINE = "write one token per line with its tags, sentences separated by blank lines"


def test_sentences_written_one_per_line(tmp_path):
    path = write(tmp_path, "Anna sings in Paris NNP VBZ IN NNP O O O I-LOC\n")
    assert error_of(path) == (
        f"{path}, line 1: every sentence is one line of 12 columns: this looks like one sentence per line; "
        + ONE_TOKEN_PER_LINE
    )
    # Sentences of one length, separated by blank lines; also when only the tokens are read.
    path = write(tmp_path, "-DOCSTART- -X- -X- O\n\nAnna sings NNP VBZ I-PER O\n\nBob runs NNP VBZ I-PER O\n", "2.txt")
    message = "every sentence is one line of 6 columns: this looks like one sentence per line; " + ONE_TOKEN_PER_LINE
    assert error_of(path) == f"{path}, line 3: {message}"
    assert error_of(path, tag_label=None) == f"{path}, line 3: {message}"
    # Sentences of different lengths, with or without blank lines between them.
    for separator in ("\n", "\n\n"):
        path = write(tmp_path, f"Anna sings in Paris NNP VBZ IN NNP O O O I-LOC{separator}Bob runs NNP VBZ I-PER O\n")
        line = separator.count("\n") + 1
        assert error_of(path) == (
            f"{path}, line {line}: found 6 columns, expected 12 as on line 1: 'Bob runs NNP VBZ I-PER O'; "
            f"if each line is a sentence, {ONE_TOKEN_PER_LINE}"
        )


def test_a_sentence_on_one_tab_separated_line(tmp_path):
    # Tokens, tags and POS each one column: the column count looks fine, the tag column does not.
    path = write(tmp_path, "Anna sings\tNNP VBZ\tO I-PER\n")
    assert error_of(path) == (
        f"{path}, line 1: column 3 (ner): invalid tag 'O I-PER': whitespace inside the tag (several tags "
        "in one column, or a sentence on one line?); expected 'O' or one of the prefixes B-, I-, L-, U-, E-, S- "
        "followed by an entity type, e.g. 'B-PER'"
    )


def test_more_than_four_columns_with_multi_line_sentences(tmp_path):
    path = write(tmp_path, "Anna NNP B-NP x I-PER\nsings VBZ B-VP x O\n\nBob NNP B-NP x I-PER\n")
    assert words_and(read(path)) == [(["Anna", "sings"], ["U-PER", "O"]), (["Bob"], ["U-PER"])]
    # A later line with the wrong count is an ordinary column error.
    path = write(tmp_path, "Anna NNP B-NP x I-PER\nsings VBZ B-VP x O\nto TO B-PP O\n", "short.txt")
    assert error_of(path) == f"{path}, line 3: found 4 columns, expected 5 as on line 1: 'to TO B-PP O'"


def test_missing_file(tmp_path):
    path = tmp_path / "eng.train"
    with pytest.raises(FileNotFoundError, match=f"^file {re.escape(str(path))} not found$"):
        read(path)


def test_mixed_separators(tmp_path):
    path = write(tmp_path, "EU\tB-ORG\nrejects O\n")
    assert error_of(path) == (
        f"{path}, line 2: columns are separated by spaces but by a tab on line 1: use one column "
        "separator throughout the file"
    )
    path = write(tmp_path, "EU B-ORG\n\n\nrejects\tO\n", "later.txt")
    assert error_of(path) == (
        f"{path}, line 4: columns are separated by a tab but by spaces on line 1: use one column "
        "separator throughout the file"
    )


def test_empty_tab_column(tmp_path):
    path = write(tmp_path, "EU\tNNP\tB-ORG\nrejects\t\tO\n")
    assert error_of(path) == f"{path}, line 2: column 2 is empty: columns are separated by one tab"


@pytest.mark.parametrize(
    "tag, reason",
    [
        ("X-PER", "unknown prefix 'X'"),
        ("B-", "empty entity type"),
        ("b-PER", "unknown prefix 'b'"),
        ("PER", "no '-' between a prefix and an entity type"),
        ("o", "no '-' between a prefix and an entity type"),
    ],
)
def test_invalid_tags(tmp_path, tag, reason):
    path = write(tmp_path, f"-DOCSTART- -X- -X- O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\nPeter NNP I-NP {tag}\n")
    assert error_of(path) == f"{path}, line 6: column 4 (ner): invalid tag {tag!r}: {reason}; {AUTO_EXPECTED}"
    assert error_of(path, coding_scheme="IOB1") == (
        f"{path}, line 6: column 4 (ner): invalid tag {tag!r}: {reason}; expected 'O' or one of the "
        "prefixes B-, I- (IOB1) followed by an entity type, e.g. 'B-PER'"
    )


def test_prefix_outside_the_declared_scheme(tmp_path):
    path = write(tmp_path, "EU B-ORG\n\nBonn U-LOC\n")
    assert error_of(path, coding_scheme="BIO") == (
        f"{path}, line 3: column 2 (ner): invalid tag 'U-LOC': unknown prefix 'U'; expected 'O' or one of "
        "the prefixes B-, I- (BIO) followed by an entity type, e.g. 'B-PER'"
    )


def test_mixed_bioul_and_bioes(tmp_path):
    path = write(tmp_path, "EU U-ORG\n\nBonn S-LOC\n")
    assert error_of(path) == (
        f"{path}, line 3: column 2 (ner): tag 'S-LOC' belongs to BIOES but an earlier tag 'U-ORG' "
        "belongs to BIOUL: use one scheme per file"
    )


def test_invalid_chunk_feature_tag_names_its_column(tmp_path):
    path = write(tmp_path, "EU NNP I-NP I-ORG\nrejects VBZ Q-VP O\n")
    assert error_of(path, feature_labels=["chunk"]).startswith(
        f"{path}, line 2: column 3 (chunk): invalid tag 'Q-VP': unknown prefix 'Q'"
    )
    # POS tags are never validated as chunk tags.
    assert read(path, tag_label="pos")[0]["tags"].labels == ["NNP", "VBZ"]


def test_undecodable_byte(tmp_path):
    path = write(tmp_path, b"EU B-ORG\n\nGerman O\nZ\xfcrich B-LOC\n")
    assert error_of(path) == (
        f"{path}, line 4: cannot decode byte 0xfc (byte 2 of the line) as utf-8: set the reader's "
        "`encoding` to the file's encoding"
    )
    assert words_and(read(path, encoding="latin-1"))[1] == (["German", "Zürich"], ["O", "U-LOC"])


def test_files_without_sentences(tmp_path):
    path = write(tmp_path, "")
    assert error_of(path) == (
        f"{path}, line 1: no sentences (the file is empty): expected lines of a token and its tags, "
        "sentences separated by blank lines"
    )
    path = write(tmp_path, "-DOCSTART- -X- -X- O\n\n", "docstart.txt")
    assert error_of(path) == (
        f"{path}, line 2: no sentences (only -DOCSTART- and blank lines): expected lines of a token and "
        "its tags, sentences separated by blank lines"
    )


def test_missing_label_columns(tmp_path):
    path = write(tmp_path, "EU B-ORG\n")
    assert error_of(path, tag_label="pos") == (
        f"{path}, line 1: found 2 columns, but reading pos tags needs at least 3 columns (token POS ... NER)"
    )
    assert error_of(path, feature_labels=["chunk"]) == (
        f"{path}, line 1: found 2 columns, but reading chunk tags needs at least 4 columns (token POS chunk NER)"
    )
    assert error_of(path, tag_label=5) == f"{path}, line 1: found 2 columns, so there is no column 5 for the tags"


def test_data_format_error_pickles():
    error = DataFormatError("a.txt", 3, "bad")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.path, copy.line, copy.message) == ("a.txt, line 3: bad", "a.txt", 3, "bad")
    assert str(DataFormatError("a.txt", None, "bad")) == "a.txt: bad"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"tag_label": "lemma"}, "unknown tag_label 'lemma': expected one of 'ner', 'pos', 'chunk'"),
        ({"tag_label": 0}, "tag_label 0: a column index must not be 0 (the token column)"),
        ({"feature_labels": ["ner", "lemma"]}, "unknown feature label 'lemma': expected one of 'ner', 'pos', 'chunk'"),
        ({"column_separator": "comma"}, "unknown column_separator 'comma': expected one of 'auto', 'tab', 'space', 'whitespace'"),
        ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"coding_scheme": "XYZ"}, "unknown tag scheme 'XYZ': expected one of IOB1, BIO, BIOUL, BIOES (or the aliases IOB2, IOBES)"),
        ({"label_encoding": "bio"}, "unknown tag scheme 'bio': expected one of IOB1, BIO, BIOUL, BIOES (or the aliases IOB2, IOBES)"),
        ({"document_context_tokens": -1}, "document_context_tokens -1: expected 0 (one instance per sentence) or a positive number of tokens"),
        ({"document_context_tokens": True}, "document_context_tokens True: expected 0 (one instance per sentence) or a positive number of tokens"),
    ],
)
def test_configuration_errors(options, message):
    with pytest.raises(ConfigurationError) as error:
        NerConllDatasetReader(**options)
    assert error.value.message == message


# ------------------------------------------------------------------------------------------
# Document context: consecutive sentences of a document joined into one instance.

# Two documents: sentences of 3, 2, 4 tokens, then 2 and 5.
DOCUMENTS = (
    "-DOCSTART- -X- -X- O\n\n"
    "EU I-ORG\nrejects O\ncall O\n\n"
    "Peter I-PER\nBlackburn I-PER\n\n"
    "BRUSSELS I-LOC\n1996-08-22 O\nthe O\nEU I-ORG\n\n"
    "-DOCSTART- -X- -X- O\n\n"
    "Rita I-PER\nsings O\n\n"
    "in O\nSan I-LOC\nJose I-LOC\ntoday O\n. O\n"
)


@pytest.mark.parametrize(
    "limit, lengths",
    [
        (5, [[3, 2], [4], [2], [5]]),  # 3+2 fits 5; 4 does not join them; never across documents
        (7, [[3, 2], [4], [2, 5]]),
        (9, [[3, 2, 4], [2, 5]]),
        (4, [[3], [2], [4], [2], [5]]),  # a 5-token sentence over the limit stays whole, alone
    ],
)
def test_document_context_joins_sentences_within_documents(tmp_path, limit, lengths):
    path = write(tmp_path, DOCUMENTS)
    sentences = read(path)
    joined = read(path, document_context_tokens=limit)
    assert [instance["metadata"]["sentence_lengths"] for instance in joined] == lengths
    # The same tokens and tags in the same order, each sentence's tags encoded on its own.
    assert [w for i in joined for w in i["metadata"]["words"]] == [w for i in sentences for w in i["metadata"]["words"]]
    tags = [t for i in joined for t in i["tags"].labels]
    assert tags == [t for i in sentences for t in i["tags"].labels]
    assert tags[:9] == ["U-ORG", "O", "O", "B-PER", "L-PER", "U-LOC", "O", "O", "U-ORG"]


def test_document_context_without_docstart_joins_the_whole_file(tmp_path):
    path = write(tmp_path, "Anna I-PER\n\nsings O\n\nin O\nParis I-LOC\n")
    joined = read(path, document_context_tokens=10)
    assert [instance["metadata"]["sentence_lengths"] for instance in joined] == [[1, 1, 2]]
    assert "sentence_lengths" not in read(path)[0]["metadata"].metadata


def test_document_context_on_conll2003(shared_dir):
    path = shared_dir / "data" / "conll2003" / "eng.testb"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    joined = read(path, document_context_tokens=128)
    assert sum(len(instance["metadata"]["sentence_lengths"]) for instance in joined) == 3453
    assert sum(len(instance["tokens"]) for instance in joined) == 46435
    # 231 documents: at least one instance each; the longest sentence (124 tokens) fits.
    assert 231 <= len(joined) < 3453
    assert max(len(instance["tokens"]) for instance in joined) <= 128
    assert sum(len(to_spans(instance["tags"].labels, "BIOUL")) for instance in joined) == 5648


# ------------------------------------------------------------------------------------------
# AllenNLP integration.


def test_registered_and_built_from_config_keys(fixtures_dir):
    reader = DatasetReader.from_params(
        Params(
            {
                "type": "ner_conll",
                "tag_label": "ner",
                "coding_scheme": "auto",
                "label_encoding": "BIOUL",
                "token_indexers": {"token_characters": {"type": "characters", "min_padding_length": 3}},
            }
        )
    )
    assert isinstance(reader, NerConllDatasetReader)
    instance = next(iter(reader.read(str(fixtures_dir / "conll" / "dev.iob1.txt"))))
    reader.apply_token_indexers(instance)
    assert isinstance(instance["tokens"].token_indexers["token_characters"], TokenCharactersIndexer)
    assert "conll2003" in DatasetReader.list_available()  # allennlp's own reader keeps its name


def test_text_to_instance_for_the_predictor():
    reader = NerConllDatasetReader()
    tokens = [Token("Anna", idx=0), Token("flew", idx=5), Token("home", idx=10)]
    instance = reader.text_to_instance(tokens)
    assert set(instance.fields) == {"tokens", "metadata"}
    assert [(token.text, token.idx) for token in instance["tokens"].tokens] == [("Anna", 0), ("flew", 5), ("home", 10)]
    assert instance["metadata"]["words"] == ["Anna", "flew", "home"]

    instance = reader.text_to_instance(["Anna", "flew"], ["U-PER", "O"], pos_tags=["NNP", "VBD"], chunk_tags=None)
    assert set(instance.fields) == {"tokens", "tags", "pos_tags", "metadata"}
    assert (instance["tags"].labels, instance["tags"]._label_namespace) == (["U-PER", "O"], "labels")
    assert (instance["pos_tags"].labels, instance["pos_tags"]._label_namespace) == (["NNP", "VBD"], "pos_tags")

    reader.apply_token_indexers(instance)
    vocabulary = Vocabulary.from_instances([instance])
    instance.index_fields(vocabulary)
    tensors = instance.as_tensor_dict()
    assert tensors["tokens"]["tokens"]["tokens"].tolist() == [
        vocabulary.get_token_index("Anna"), vocabulary.get_token_index("flew")
    ]
    assert tensors["tags"].tolist() == [vocabulary.get_token_index(tag, "labels") for tag in ["U-PER", "O"]]


def test_multiprocess_loader_yields_each_instance_once(fixtures_dir):
    path = str(fixtures_dir / "conll" / "train.iob1.txt")
    reader = NerConllDatasetReader()
    expected, seen = sentences_read_and_loaded(reader, path, batch_size=5)
    assert seen == expected
    assert sum(seen.values()) == 32


# ------------------------------------------------------------------------------------------
# CoNLL-2003 itself (skipped where ../shared is absent).


@pytest.mark.parametrize(
    "name, sentences, tokens, entities",
    [
        ("eng.train", 14041, 203621, 23499),  # a few seconds
        ("eng.testa", 3250, 51362, 5942),
        ("eng.testb", 3453, 46435, 5648),
    ],
)
def test_conll2003_counts(shared_dir, name, sentences, tokens, entities):
    path = shared_dir / "data" / "conll2003" / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    instances = read(path)
    assert len(instances) == sentences
    assert sum(len(instance["tokens"]) for instance in instances) == tokens
    assert sum(len(to_spans(instance["tags"].labels, "BIOUL")) for instance in instances) == entities


def test_conll2003_matches_allennlp_models_reader(shared_dir):
    from allennlp.data.dataset_readers.conll2003 import Conll2003DatasetReader

    path = shared_dir / "data" / "conll2003" / "eng.testa"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    ours = words_and(read(path, label_encoding="BIOUL"))
    theirs = words_and(Conll2003DatasetReader(convert_to_coding_scheme="BIOUL").read(str(path)))
    assert ours == theirs
