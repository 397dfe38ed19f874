"""
A bundled tagger whose network runs in torch (`ner_elmo.runtime.network`): every architecture
`allennlp ner-export` writes, ELMo included, on a CPU or a GPU.
"""
import os
from typing import Any, Optional, Sequence, Union

import torch

from ner_elmo.modules.elmo.char_ids import batch_to_char_ids
from ner_elmo.runtime import bundle as bundle_files
from ner_elmo.runtime.bundle_tagger import BundleTagger
from ner_elmo.runtime.network import TaggerNetwork
from ner_elmo.runtime.text_tagger import Entity  # noqa: F401  (the API's name, as before)


class Tagger(BundleTagger):
    """
    Tags texts with a bundled network in torch. Prefer `ner_elmo.load`.

    # Parameters

    directory : the bundle.
    device : `str`, optional (default = `"cpu"`)
        Where the network runs (`"cuda"`, `"cuda:1"`).
    elmo_dtype : `str`, optional (default = `"float32"`)
        The precision of an ELMo biLM's LSTM products (`FastElmoBiLm`'s `dtype`: `"int8"` on a
        CPU, `"bfloat16"` or `"float16"` on a GPU), at the precision cost its docstring states.
    batch_size, min_score, temperature, and the input limits: see `BundleTagger`.
    """

    def __init__(
        self, directory: Union[str, os.PathLike], device: str = "cpu", elmo_dtype: str = "float32", **kwargs: Any
    ) -> None:
        super().__init__(directory, **kwargs)
        weights = bundle_files.read_weights(self.directory)
        self._network = TaggerNetwork(self.spec, self.vocabulary, self.directory, elmo_dtype)
        self._network.load_weights(weights, str(self.directory / bundle_files.WEIGHTS_NAME))
        self._network.eval().to(device)
        self.device = torch.device(device)
        self._crf = None
        if hasattr(self._network, "crf"):
            self._crf = tuple(value.cpu().numpy() for value in self._network.transition_scores())

    @torch.inference_mode()
    def tag_sentences(self, sentences: Sequence[Sequence[Any]], batch_size: Optional[int] = None):
        return super().tag_sentences(sentences, batch_size)

    def logits(self, sentences: Sequence[Sequence[Any]]):
        """The emission scores `(batch, time, tags)` of sentences of tokens, and the mask (torch)."""
        arrays, mask, texts = self.encode(sentences)
        tensors = {}
        for item in self.spec["inputs"]:
            key = item["key"]
            if item["indexer"] == "elmo_characters":
                tensors[key] = batch_to_char_ids(texts).to(self.device)
            elif isinstance(arrays[key], tuple):
                tensors[key] = tuple(torch.from_numpy(array).to(self.device) for array in arrays[key])
            else:
                tensors[key] = torch.from_numpy(arrays[key]).to(self.device)
        mask = torch.from_numpy(mask).to(self.device)
        with torch.inference_mode():
            return self._network(tensors, mask), mask

    def decode(self, logits: torch.Tensor, mask: torch.Tensor, temperature: Optional[float] = None):
        """Each row's `(tags, SentenceScores)`, the scores at `temperature` (default: the
        tagger's); decoded on the CPU (`BundleTagger.decode_numpy`)."""
        return self.decode_numpy(logits.float().cpu().numpy(), mask.cpu().numpy(), self._crf, temperature)
