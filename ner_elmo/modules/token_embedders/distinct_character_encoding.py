import torch
from allennlp.modules.seq2vec_encoders import CnnEncoder
from allennlp.modules.token_embedders import TokenCharactersEncoder, TokenEmbedder

from ner_elmo.modules.char_cnn import cnn_word_encodings, distinct_word_encodings


@TokenEmbedder.register("distinct_character_encoding")
class DistinctCharacterEncoding(TokenCharactersEncoder):
    """
    allennlp's `character_encoding` computed once per distinct word of the batch instead of once
    per token. A word's encoding depends only on its characters, and a batch of news sentences
    repeats its words ("the", ",", "said", padding) about twice on average, so the character
    embedding and encoder (a CNN, with its masking and pooling) run on about half the rows; the
    encodings are then copied to every token. Outputs equal `character_encoding`'s with the same
    weights (up to float32 summation order in the gradients of repeated words), and the
    parameters have the same names, so archives of either load into the other.

    A `cnn` encoder runs as `ner_elmo.modules.char_cnn.cnn_word_encodings`, the computation the
    torch-only runtime runs; another encoder runs as itself.

    Dropout (`dropout`) is applied after the copy, so each token still draws its own mask.

    Registered as a `TokenEmbedder` with name "distinct_character_encoding".

    # Parameters

    embedding : `Embedding`, required
        The character embedding (`vocab_namespace: "token_characters"`).
    encoder : `Seq2VecEncoder`, required
        Encodes a word's character embeddings, masked by the non-padding characters.
    dropout : `float`, optional (default = `0.0`)
        Dropout on the encodings.
    """

    def forward(self, token_characters: torch.Tensor) -> torch.Tensor:
        return self._dropout(distinct_word_encodings(token_characters, self._encode_words))

    def _encode_words(self, characters: torch.Tensor) -> torch.Tensor:
        # The TimeDistributed wrappers' modules, applied to (distinct words, characters) directly.
        embedded = self._embedding._module(characters)
        encoder = self._encoder._module
        if type(encoder) is CnnEncoder:
            return cnn_word_encodings(
                embedded, characters != 0, encoder._convolution_layers, encoder._activation, encoder.projection_layer
            )
        return encoder(embedded, characters != 0)
