from typing import List, Mapping, Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.file_utils import get_file_extension
from allennlp.data import Vocabulary
from allennlp.modules.token_embedders.embedding import (
    Embedding,
    EmbeddingsTextFile,
    format_embeddings_file_uri,
    parse_embeddings_file_uri,
)
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder

from ner_elmo.modules.token_embedders.pretrained_files import local_copy


@TokenEmbedder.register("ner_embedding")
class NerEmbedding(Embedding):
    """
    allennlp's `"embedding"` with two changes.

    A `pretrained_file` that cannot be had (a missing path, an unreachable or unknown URL) raises
    a `ConfigurationError` naming the file, the reason and the setting to point at a local copy
    (`NER_ELMO_GLOVE` when the training configs took it from there), instead of whatever
    `cached_path` raises after 30 seconds of retries.  The file is fetched into allennlp's cache
    as before; an `(archive)#member` URI keeps its member.

    With `pretrained_extension: true`, every word of the pretrained file has its vector when the
    model tags new text, not only the words of the training data.  When the model is built for
    training (from a configuration with a `pretrained_file` and the training data's vocabulary),
    the words of the file that the vocabulary's namespace lacks are added to it after the
    training words (whose ids do not move), and their pretrained vectors are kept, unchanged, in
    the buffer `extension`: saved with the weights, but with no gradient and no optimizer state.
    The training words keep their trainable rows in `weight`, initialised as `"embedding"` does
    (their pretrained vector, else a normal draw; its mean and standard deviation are then those
    of the whole file instead of those of the training words' vectors).  An id below `weight`'s
    row count is looked up in `weight`, a larger one in `extension`.  The vocabulary allennlp
    saves after building the model (and archives) holds the extension words.

    As with `"embedding"`, the file is read only when the model is built from a configuration
    with a vocabulary; a model loaded from an archive takes its vectors from its weights
    (allennlp drops `pretrained_file` from an archive's configuration), the extension included:
    built with one row per word of the archived vocabulary, the embedder takes the split of
    `weight` and `extension` from the saved weights.

    What the extension costs is measured by benchmarks/vocabulary_extension.py: mostly reading
    the whole file when the model is built, and the extension's size in every checkpoint, in
    the archive and in memory (GloVe 6B 50d: 76 MB).  Distributed training broadcasts the buffer
    at every step unless its `ddp_kwargs` say `broadcast_buffers: false`, and distributed
    training resumed with `--recover` is not supported: its vocabulary, read from the run's
    files, already holds the extension words.

    Registered as a `TokenEmbedder` with name "ner_embedding".

    # Parameters

    embedding_dim, pretrained_file, vocab, vocab_namespace, trainable, and every other `"embedding"` key :
        As for allennlp's `Embedding`.
    pretrained_extension : `bool`, optional (default = `False`)
        Add the pretrained file's other words to the vocabulary with their frozen vectors, as
        above.  Needs a text `pretrained_file` (the words are read from it) to do anything.
    """

    def __init__(
        self,
        embedding_dim: int,
        pretrained_file: Optional[str] = None,
        vocab: Optional[Vocabulary] = None,
        vocab_namespace: str = "tokens",
        trainable: bool = True,
        pretrained_extension: bool = False,
        **kwargs,
    ) -> None:
        building_from_file = pretrained_file is not None and vocab is not None
        if building_from_file:
            main_file, member = parse_embeddings_file_uri(pretrained_file)
            local = local_copy(main_file, "pretrained embeddings file", "pretrained_file", "NER_ELMO_GLOVE")
            pretrained_file = format_embeddings_file_uri(local, member)
        trained_rows = None
        if pretrained_extension and building_from_file:
            if get_file_extension(pretrained_file) in (".h5", ".hdf5"):
                raise ConfigurationError(
                    f"pretrained_extension needs a text file of word vectors; {pretrained_file} is an "
                    "HDF5 matrix without words"
                )
            trained_rows = vocab.get_vocab_size(vocab_namespace)
            known = vocab.get_token_to_index_vocabulary(vocab_namespace)
            vocab.add_tokens_to_namespace(_words_not_in(pretrained_file, embedding_dim, known), vocab_namespace)
        # With the extension, allennlp's reader (a second pass of the file, the first read only
        # its words) gives the vectors of the whole extended vocabulary; the rows are split below.
        super().__init__(
            embedding_dim,
            pretrained_file=pretrained_file,
            vocab=vocab,
            vocab_namespace=vocab_namespace,
            trainable=trainable,
            **kwargs,
        )
        extension: Optional[torch.Tensor] = None
        if trained_rows is not None:
            table = self.weight.data
            self.weight = torch.nn.Parameter(table[:trained_rows].clone(), requires_grad=trainable)
            extension = table[trained_rows:].clone()
        elif pretrained_extension:
            # Built from an archive (or without a file): the extension, if any, comes with the
            # weights (`_load_from_state_dict`).
            extension = self.weight.data.new_empty(0, embedding_dim)
        # None (not in the state dict) without the option, so older archives load unchanged.
        self.register_buffer("extension", extension)

    def _has_extension(self) -> bool:
        return self.extension is not None and len(self.extension) > 0

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not self._has_extension():
            return super().forward(tokens)
        trained_rows = len(self.weight)
        trained = tokens < trained_rows
        # Extension words read row 0 of `weight` here (their result is discarded below, and so
        # is its gradient), and training words row 0 of `extension`.
        embedded = super().forward(tokens.masked_fill(~trained, 0))
        pretrained = torch.nn.functional.embedding(
            (tokens - trained_rows).clamp(min=0), self.extension, max_norm=self.max_norm, norm_type=self.norm_type
        )
        if self._projection is not None:
            pretrained = self._projection(pretrained)
        return torch.where(trained.unsqueeze(-1), embedded, pretrained)

    def extend_vocab(
        self,
        extended_vocab: Vocabulary,
        vocab_namespace: str = None,
        extension_pretrained_file: str = None,
        model_path: str = None,
    ):
        """
        `Embedding.extend_vocab`: the rows of words added to the vocabulary since training
        (`allennlp evaluate --extend-vocab`, fine-tuning) come from `extension_pretrained_file`
        when given, else are random (xavier), as with `"embedding"`.  With an extension they
        come after it, so they join the frozen `extension`.
        """
        if not self._has_extension():
            # Also the case of a model built from an archive, before its weights are loaded: the
            # vocabulary and `weight` have the same size, and this is a no-op.
            super().extend_vocab(extended_vocab, vocab_namespace, extension_pretrained_file, model_path)
            return
        trained_rows = len(self.weight)
        requires_grad = self.weight.requires_grad
        # `Embedding.extend_vocab` appends rows to `self.weight`: give it the whole table, then
        # split it again.
        self.weight = torch.nn.Parameter(torch.cat([self.weight.data, self.extension]), requires_grad=requires_grad)
        try:
            super().extend_vocab(extended_vocab, vocab_namespace, extension_pretrained_file, model_path)
        finally:
            table = self.weight.data
            self.weight = torch.nn.Parameter(table[:trained_rows].clone(), requires_grad=requires_grad)
            self.extension = table[trained_rows:].clone()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        weight = state_dict.get(prefix + "weight")
        extension = state_dict.get(prefix + "extension")
        if self.extension is not None and weight is not None and extension is not None:
            same_vocabulary = len(weight) + len(extension) == len(self.weight) + len(self.extension)
            if same_vocabulary and len(weight) != len(self.weight):
                # Built from an archive's vocabulary, which holds the extension words, this
                # embedder has a `weight` row for every word: the saved weights say which were
                # trained.  Assigning `.data` keeps the parameter an optimizer may hold.
                self.weight.data = self.weight.data.new_empty(weight.shape)
                self.extension = self.extension.new_empty(extension.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _words_not_in(file_uri: str, embedding_dim: int, known: Mapping[str, int]) -> List[str]:
    """
    The words of the embeddings text file `file_uri` (any format `EmbeddingsTextFile` opens)
    that `known` lacks, in file order.  Lines without `embedding_dim` numbers are left out, as
    allennlp's reader skips them (it would give those words a random vector).
    """
    words = []
    with EmbeddingsTextFile(file_uri) as lines:
        for line in lines:
            word = line.split(" ", 1)[0]
            if word not in known and line.rstrip().count(" ") == embedding_dim:
                words.append(word)
    return words
