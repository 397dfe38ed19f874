from typing import Optional

from allennlp.data import Vocabulary
from allennlp.modules.token_embedders.embedding import (
    Embedding,
    format_embeddings_file_uri,
    parse_embeddings_file_uri,
)
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder

from ner_elmo.modules.token_embedders.pretrained_files import local_copy


@TokenEmbedder.register("ner_embedding")
class PretrainedFileEmbedding(Embedding):
    """
    allennlp's `"embedding"`, unchanged, except that a `pretrained_file` that cannot be had (a
    missing path, an unreachable or unknown URL) raises a `ConfigurationError` naming the file,
    the reason and the setting to point at a local copy (`NER_ELMO_GLOVE` when the training
    configs took it from there), instead of whatever `cached_path` raises after 30 seconds of
    retries.  The file is fetched into allennlp's cache as before; an `(archive)#member` URI keeps
    its member.

    As with `"embedding"`, the file is read only when the model is built from a configuration
    with a vocabulary; a model loaded from an archive takes its vectors from its weights
    (allennlp drops `pretrained_file` from an archive's configuration).

    Registered as a `TokenEmbedder` with name "ner_embedding".

    # Parameters

    embedding_dim, pretrained_file, vocab, and every other `"embedding"` key :
        As for allennlp's `Embedding`.
    """

    def __init__(
        self,
        embedding_dim: int,
        pretrained_file: Optional[str] = None,
        vocab: Optional[Vocabulary] = None,
        **kwargs,
    ) -> None:
        if pretrained_file is not None and vocab is not None:
            main_file, member = parse_embeddings_file_uri(pretrained_file)
            local = local_copy(main_file, "pretrained embeddings file", "pretrained_file", "NER_ELMO_GLOVE")
            pretrained_file = format_embeddings_file_uri(local, member)
        super().__init__(embedding_dim, pretrained_file=pretrained_file, vocab=vocab, **kwargs)
