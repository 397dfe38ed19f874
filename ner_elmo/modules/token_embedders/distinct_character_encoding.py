import torch
from allennlp.modules.token_embedders import TokenCharactersEncoder, TokenEmbedder


@TokenEmbedder.register("distinct_character_encoding")
class DistinctTokenCharactersEncoder(TokenCharactersEncoder):
    """
    allennlp's `character_encoding` computed once per distinct word of the batch instead of once
    per token. A word's encoding depends only on its characters, and a batch of news sentences
    repeats its words ("the", ",", "said", padding) about twice on average, so the character
    embedding and encoder (a CNN, with its masking and pooling) run on about half the rows; the
    encodings are then copied to every token. Outputs equal `character_encoding`'s with the same
    weights (up to float32 summation order in the gradients of repeated words), and the
    parameters have the same names, so archives of either load into the other.

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
        rows = token_characters.reshape(-1, token_characters.size(-1))
        # `index` maps each token to its distinct row; identical rows give identical encodings.
        distinct, index = torch.unique(rows, dim=0, return_inverse=True)
        # The TimeDistributed wrappers' modules, applied to (distinct words, characters) directly.
        encoded = self._encoder._module(self._embedding._module(distinct), distinct != 0)
        return self._dropout(encoded.index_select(0, index).view(*token_characters.shape[:-1], -1))
