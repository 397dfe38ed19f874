"""
ELMo character ids for tokens, the same numbers as allennlp's `ELMoCharacterMapper`
and `allennlp.modules.elmo.batch_to_ids`, computed with torch alone.

A token becomes 50 ids: begin-of-word, its utf-8 bytes (at most 48, undecodable
characters dropped), end-of-word, then padding; every id is shifted by +1 so that 0
means "no token" (the padding rows of a batch).  The sentence marks `<S>` and `</S>`
have their own fixed rows, which `FastElmoBiLm` adds around every sentence.
"""
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import torch

MAX_WORD_LENGTH = 50

# Ids 0-255 are utf-8 bytes; the special characters follow (before the +1 shift).
BEGINNING_OF_SENTENCE_CHARACTER = 256
END_OF_SENTENCE_CHARACTER = 257
BEGINNING_OF_WORD_CHARACTER = 258
END_OF_WORD_CHARACTER = 259
PADDING_CHARACTER = 260

BOS_TOKEN = "<S>"
EOS_TOKEN = "</S>"


def _special_token_ids(character: int) -> Tuple[int, ...]:
    ids = [PADDING_CHARACTER] * MAX_WORD_LENGTH
    ids[0] = BEGINNING_OF_WORD_CHARACTER
    ids[1] = character
    ids[2] = END_OF_WORD_CHARACTER
    return tuple(i + 1 for i in ids)


# Shifted (+1) rows, as the bilm sees them.
BOS_CHAR_IDS: Tuple[int, ...] = _special_token_ids(BEGINNING_OF_SENTENCE_CHARACTER)
EOS_CHAR_IDS: Tuple[int, ...] = _special_token_ids(END_OF_SENTENCE_CHARACTER)


@lru_cache(maxsize=100_000)
def _word_char_ids(word: str) -> Tuple[int, ...]:
    if word == BOS_TOKEN:
        return BOS_CHAR_IDS
    if word == EOS_TOKEN:
        return EOS_CHAR_IDS
    encoded = word.encode("utf-8", "ignore")[: MAX_WORD_LENGTH - 2]
    ids = [PADDING_CHARACTER + 1] * MAX_WORD_LENGTH
    ids[0] = BEGINNING_OF_WORD_CHARACTER + 1
    ids[1 : len(encoded) + 1] = [b + 1 for b in encoded]
    ids[len(encoded) + 1] = END_OF_WORD_CHARACTER + 1
    return tuple(ids)


def token_to_char_ids(word: str, tokens_to_add: Optional[Dict[str, int]] = None) -> List[int]:
    """
    The 50 shifted character ids of one token (`ELMoCharacterMapper.convert_word_to_char_ids`).

    # Parameters

    word : `str`
        The token text.  `"<S>"` and `"</S>"` map to the sentence marks, as in allennlp.
    tokens_to_add : `Dict[str, int]`, optional (default = `None`)
        Special tokens mapped to a single character id (before the +1 shift).
    """
    if tokens_to_add and word in tokens_to_add:
        return list(_special_token_ids(tokens_to_add[word]))
    return list(_word_char_ids(word))


def batch_to_char_ids(
    sentences: Sequence[Sequence[str]], tokens_to_add: Optional[Dict[str, int]] = None
) -> torch.LongTensor:
    """
    Character ids of a batch of tokenized sentences, shape `(batch_size, max_length, 50)`,
    padded with all-zero rows; equal to `allennlp.modules.elmo.batch_to_ids(sentences)`.

    # Parameters

    sentences : `Sequence[Sequence[str]]`
        Tokenized sentences.
    tokens_to_add : `Dict[str, int]`, optional (default = `None`)
        As in `token_to_char_ids`.
    """
    max_length = max((len(s) for s in sentences), default=0)
    rows: List[List[int]] = []
    padding = [0] * MAX_WORD_LENGTH
    for sentence in sentences:
        for word in sentence:
            if not isinstance(word, str):
                raise TypeError(f"token {word!r} of sentence {list(sentence)!r} is not a str")
            rows.append(token_to_char_ids(word, tokens_to_add))
        rows.extend([padding] * (max_length - len(sentence)))
    ids = torch.tensor(rows, dtype=torch.long) if rows else torch.zeros(0, dtype=torch.long)
    return ids.view(len(sentences), max_length, MAX_WORD_LENGTH)
