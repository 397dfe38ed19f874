from typing import List

import pytest

from ner_elmo.data.text_segmentation import TextSegmenter, TextToken, blank_english, split_long_sentence


def words(sentences) -> List[List[str]]:
    return [[token.text for token in sentence] for sentence in sentences]


def spans(sentences) -> List[List[tuple]]:
    return [[(token.start, token.end) for token in sentence] for sentence in sentences]


def assert_offsets_exact(text: str, sentences) -> None:
    previous_end = 0
    for sentence in sentences:
        assert sentence, "no empty sentence is ever yielded"
        for token in sentence:
            assert text[token.start : token.end] == token.text
            assert previous_end <= token.start < token.end
            previous_end = token.end


def test_tokens_are_close_to_conll_tokenization():
    text = "U.S. officials said Smith's Anglo-Dutch unit isn't well-known since 1996-08-22."
    assert words(TextSegmenter().sentences(text)) == [
        ["U.S.", "officials", "said", "Smith", "'s", "Anglo-Dutch", "unit", "is", "n't",
         "well-known", "since", "1996-08-22", "."]
    ]


def test_sentences_and_offsets_of_multi_sentence_text():
    text = "Maria flew to Oslo. Did she stay?  Yes, e.g. until 3 p.m. today!"
    sentences = list(TextSegmenter().sentences(text))
    assert words(sentences) == [
        ["Maria", "flew", "to", "Oslo", "."],
        ["Did", "she", "stay", "?"],
        ["Yes", ",", "e.g.", "until", "3", "p.m.", "today", "!"],
    ]
    assert spans(sentences)[1] == [(20, 23), (24, 27), (28, 32), (32, 33)]
    assert_offsets_exact(text, sentences)


def test_crlf_tabs_and_surrounding_whitespace_keep_offsets_into_the_original():
    text = "  \tFirst line\r\nsame sentence.\r\n\r\n\tNext  paragraph \r\n"
    sentences = list(TextSegmenter().sentences(text))
    assert words(sentences) == [["First", "line", "same", "sentence", "."], ["Next", "paragraph"]]
    assert spans(sentences) == [[(3, 8), (9, 13), (15, 19), (20, 28), (28, 29)], [(34, 38), (40, 49)]]
    assert_offsets_exact(text, sentences)


@pytest.mark.parametrize("separator", ["\n\n", "\r\n\r\n", "\r\r", "\n \t\n", "\n\n\n\n", "\u2029"])
def test_a_paragraph_break_ends_a_sentence_but_a_single_line_break_does_not(separator):
    text = f"no full stop here{separator}next one\ncontinues"
    assert words(TextSegmenter().sentences(text)) == [
        ["no", "full", "stop", "here"],
        ["next", "one", "continues"],
    ]


@pytest.mark.parametrize("text", ["", " ", "\t\r\n \u00a0\u3000", "\u200b\u200d\x00\x07", "\n\n\n"])
def test_text_without_tokens_has_no_sentences(text):
    assert list(TextSegmenter().sentences(text)) == []
    assert list(TextSegmenter().sentence_pieces(text)) == []


def test_unicode_text_keeps_code_point_offsets():
    text = "Zoë and Ørsted met in ירושלים. ثم القاهرة 😀 a\u0301b\u0308!"
    sentences = list(TextSegmenter().sentences(text))
    assert words(sentences) == [
        ["Zoë", "and", "Ørsted", "met", "in", "ירושלים", "."],
        ["ثم", "القاهرة", "😀", "a\u0301b\u0308", "!"],
    ]
    assert spans(sentences)[1][2] == (text.index("😀"), text.index("😀") + 1)
    assert_offsets_exact(text, sentences)


def test_control_and_format_characters_are_trimmed_from_token_edges():
    text = "\x00word\x07 \u200bzero\u200d \U0001F468\u200d\U0001F469 \ufeffx"
    sentences = list(TextSegmenter().sentences(text))
    assert words(sentences) == [["word", "zero", "\U0001F468", "\U0001F469", "x"]]
    assert spans(sentences)[0][:2] == [(1, 5), (8, 12)]
    assert_offsets_exact(text, sentences)


def test_long_sentences_are_cut_after_punctuation_when_possible():
    # 12 tokens, a comma as the 7th: with at most 8 tokens a piece, the cut goes after it.
    text = "one two three four five six , seven eight nine ten eleven"
    assert [len(piece) for piece in TextSegmenter(max_sentence_tokens=8).sentences(text)] == [7, 5]


def test_split_long_sentence_prefers_punctuation_then_whitespace_then_a_hard_cut():
    def tokens(layout: str) -> List[TextToken]:
        # one character a token; "_" marks a space before the next token
        result, offset = [], 0
        for char in layout:
            if char == "_":
                offset += 1
                continue
            result.append(TextToken(char, offset, offset + 1))
            offset += 1
        return result

    assert [len(p) for p in split_long_sentence(tokens("aa;aaaaaa"), 4)] == [3, 4, 2]
    assert [len(p) for p in split_long_sentence(tokens("aaa_aaaaaa"), 4)] == [3, 4, 2]
    assert [len(p) for p in split_long_sentence(tokens("aaaaaaaaa"), 4)] == [4, 4, 1]
    assert list(split_long_sentence([], 4)) == []
    with pytest.raises(ValueError, match="max_tokens must be at least 1"):
        list(split_long_sentence(tokens("a"), 0))


def test_sentence_pieces_do_not_split_sentences_but_cut_long_ones():
    text = "Maria flew. Then Oslo!\n\nMore"
    assert words(TextSegmenter().sentence_pieces(text)) == [
        ["Maria", "flew", ".", "Then", "Oslo", "!", "More"]
    ]
    assert [len(p) for p in TextSegmenter(max_sentence_tokens=3).sentence_pieces(text)] == [3, 3, 1]


def test_ten_thousand_tokens_in_one_sentence_are_cut_into_bounded_pieces():
    text = " ".join(f"w{i}" for i in range(10_000))
    pieces = list(TextSegmenter(max_sentence_tokens=200).sentences(text))
    assert [len(piece) for piece in pieces] == [200] * 50
    assert [token.text for piece in pieces for token in piece] == text.split(" ")


def test_small_chunks_cut_at_line_breaks_then_whitespace_then_anywhere():
    text = "alpha beta gamma\ndelta epsilon zeta eta theta iota " + "x" * 45
    segmenter = TextSegmenter(max_chunk_chars=20)
    tokens = segmenter.tokens(text)
    # every word survives whole except the 45-character one, which is cut every 20 characters
    assert [t.text for t in tokens] == text.split()[:-1] + ["x" * 20, "x" * 20, "x" * 5]
    assert_offsets_exact(text, [tokens])


def test_documents_over_spacys_max_length_are_processed_in_chunks(monkeypatch):
    # spaCy refuses texts over `max_length` (1,000,000): scaled down here, the real size is in
    # benchmarks/long_input.py.
    monkeypatch.setattr(blank_english(), "max_length", 1_000)
    paragraph = "Kestrel Trading opened an office in Nairobi on Tuesday , officials said .\n"
    text = paragraph * 400  # single line breaks only: one 30,000-character paragraph
    sentences = list(TextSegmenter(max_chunk_chars=1_000).sentences(text))
    assert sum(len(sentence) for sentence in sentences) == len(text.split())
    assert_offsets_exact(text, sentences)
    with pytest.raises(ValueError, match="E088"):  # spaCy's own "text too long" error
        list(TextSegmenter(max_chunk_chars=2_000).sentences(text))


def test_a_run_without_whitespace_is_cut_every_max_run_chars():
    word = "a" * 120
    text = f"x {word} y"
    assert [t.text for t in TextSegmenter().tokens(text)] == ["x", "a" * 50, "a" * 50, "a" * 20, "y"]
    assert [t.text for t in TextSegmenter(max_run_chars=200).tokens(text)] == ["x", word, "y"]
    # Chunk cuts still apply to runs allowed through whole.
    assert [len(t.text) for t in TextSegmenter(max_chunk_chars=30_000, max_run_chars=10**6).tokens("b" * 70_000)] == [
        30_000, 30_000, 10_000
    ]


def test_long_punctuation_runs_never_reach_spacy_whole(monkeypatch):
    # spaCy's tokenizer is quadratic in a run's length (20,000 ")" take 33 s): it must only
    # ever see runs of at most max_run_chars characters.
    nlp = blank_english()
    seen: List[str] = []
    make_doc = nlp.make_doc
    monkeypatch.setattr(nlp, "make_doc", lambda text: seen.append(text) or make_doc(text))
    text = "Smith (" + ")" * 20_000 + " said.\n\nNext paragraph."
    sentences = list(TextSegmenter().sentences(text))
    tokens = [token for sentence in sentences for token in sentence]
    assert [t.text for t in tokens] == ["Smith", "("] + [")"] * 20_000 + ["said", ".", "Next", "paragraph", "."]
    assert_offsets_exact(text, sentences)
    assert seen and max(len(run) for piece in seen for run in piece.split()) <= 50


def test_text_without_long_runs_is_tokenized_and_split_as_spacy_does():
    text = "Angela Merkel met Emmanuel Macron in Berlin. They spoke (briefly) about U.S. trade!\n" * 3
    cut = TextSegmenter()
    whole = TextSegmenter(max_run_chars=10**6)
    assert list(cut.sentences(text)) == list(whole.sentences(text))
    assert len(list(cut.sentences(text))) == 6


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="max_sentence_tokens must be at least 1"):
        TextSegmenter(max_sentence_tokens=0)
    with pytest.raises(ValueError, match="max_chunk_chars must be in"):
        TextSegmenter(max_chunk_chars=2_000_000)
    with pytest.raises(ValueError, match="max_run_chars must be at least 1"):
        TextSegmenter(max_run_chars=0)


def test_the_spacy_pipeline_is_built_once():
    assert blank_english() is blank_english()
    assert blank_english().pipe_names == ["sentencizer"]
