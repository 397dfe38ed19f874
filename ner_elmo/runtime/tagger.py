"""
`ner_elmo.load(path)`: a tagger from a bundle (torch alone) or an archive (through allennlp).

    tagger = ner_elmo.load("runs/conll/bundle")
    tagger("Angela Merkel met Emmanuel Macron in Berlin.")   # [Entity(...), ...]
    tagger.tag_batch(["First text.", ["Pre", "tokenized", "."]], batch_size=64)

Both kinds tag exactly as the allennlp `ner` predictor does: the same sentence splitting and
tokens (`ner_elmo.runtime.inputs`), the same network computation, the same decoder, and the
same entity scores (`ner_elmo.modules.entity_confidence`).
"""
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Union

import numpy
import torch

from ner_elmo.modules.elmo.char_ids import batch_to_char_ids
from ner_elmo.modules.entity_confidence import EntityScorer, SentenceScores
from ner_elmo.modules.viterbi import viterbi_decode_batch
from ner_elmo.runtime import bundle as bundle_files
from ner_elmo.runtime.inputs import InputReader, JsonDict, ParsedInput
from ner_elmo.runtime.network import TaggerNetwork

Text = Union[str, Sequence[str]]


class Entity(NamedTuple):
    """An entity: its text, type, character offsets (`end` exclusive) and probability."""

    text: str
    label: str
    start: int
    end: int
    score: Optional[float] = None


class TextTagger:
    """The Python API over a `predict_batch_json` (the `ner` predictor's JSON interface)."""

    def predict_batch_json(self, inputs: List[JsonDict], batch_size: Optional[int] = None) -> List[JsonDict]:
        raise NotImplementedError

    def __call__(self, text: Text) -> List[Entity]:
        """The entities of one text (a string, or a list of tokens: one sentence)."""
        return self.tag_batch([text])[0]

    def tag_batch(self, texts: Iterable[Text], batch_size: Optional[int] = None) -> List[List[Entity]]:
        """The entities of each text; all sentences go through the network sorted by length.
        A text that cannot be tagged (no tokens, too long) raises `ValueError` naming it."""
        inputs = [{"text": text} if isinstance(text, str) else {"tokens": list(text)} for text in texts]
        outputs = self.predict_batch_json(inputs, batch_size)
        entities = []
        for index, output in enumerate(outputs):
            if "error" in output:
                raise ValueError(f"text {index}: {output['error']}")
            entities.append([Entity(e["text"], e["label"], e["start"], e["end"], e.get("score")) for e in output["entities"]])
        return entities


class Tagger(TextTagger):
    """
    Tags texts with a bundled network. Prefer `ner_elmo.load`.

    # Parameters

    directory : the bundle.
    device : `str`, optional (default = `"cpu"`)
        Where the network runs (`"cuda"`, `"cuda:1"`).
    batch_size : `int`, optional (default = `64`)
        Sentences per forward pass.
    min_score : `float`, optional (default = `None`)
        Leave out entities scoring below it.
    elmo_dtype : `str`, optional (default = `"float32"`)
        The precision of an ELMo biLM's LSTM products (`FastElmoBiLm`'s `dtype`: `"int8"` on a
        CPU, `"bfloat16"` or `"float16"` on a GPU), at the precision cost its docstring states.
    temperature : `float`, optional (default = the bundle's, else `1.0`)
        Entity scores are computed with every score of the network divided by it (fitted on dev
        data by `allennlp ner-calibrate`); the tags do not depend on it.
    max_sentence_tokens, max_token_chars, max_run_chars, max_text_chars, max_json_depth :
        As for the `ner` predictor; by default the bundle's (the archive's predictor settings).
    """

    def __init__(
        self,
        directory: Union[str, os.PathLike],
        device: str = "cpu",
        batch_size: int = 64,
        min_score: Optional[float] = None,
        temperature: Optional[float] = None,
        elmo_dtype: str = "float32",
        **input_settings: Any,
    ) -> None:
        self.directory = Path(directory)
        config = bundle_files.read_config(self.directory)
        vocabulary = bundle_files.read_vocabulary(self.directory)
        weights = bundle_files.read_weights(self.directory)
        spec = config["model"]
        self.config = config
        self.label_encoding: str = spec["label_encoding"]
        self.labels: List[str] = vocabulary[spec["label_namespace"]]
        self._network = TaggerNetwork(spec, vocabulary, self.directory, elmo_dtype)
        self._network.load_weights(weights, str(self.directory / bundle_files.WEIGHTS_NAME))
        self._network.eval().to(device)
        self.device = torch.device(device)
        self._indexes = {
            item["key"]: {token: index for index, token in enumerate(vocabulary[item["namespace"]])}
            for item in spec["inputs"]
            if item.get("namespace")
        }
        self._inputs = InputReader(**{**config.get("inputs", {}), **input_settings})
        self.scorer = EntityScorer(self.labels, self.label_encoding)
        self.batch_size = batch_size
        self.min_score = min_score
        self.temperature = float(temperature or config.get("scores", {}).get("temperature", 1.0))

    # ----------------------------------------------------------------------------------------
    # The `ner` predictor's JSON interface (ner-predict, the service, Spark).

    def load_line(self, line: str) -> JsonDict:
        return self._inputs.load_line(line)

    def dump_line(self, outputs: JsonDict) -> str:
        return self._inputs.dump_line(outputs)

    def parse(self, value: Any) -> Union[ParsedInput, JsonDict]:
        return self._inputs.parse(value)

    def predict_json(self, inputs: JsonDict) -> JsonDict:
        return self.predict_batch_json([inputs])[0]

    def predict_batch_json(self, inputs: List[JsonDict], batch_size: Optional[int] = None) -> List[JsonDict]:
        return self.predict_parsed([self.parse(value) for value in inputs], batch_size)

    def predict_parsed(
        self, requests: List[Union[ParsedInput, JsonDict]], batch_size: Optional[int] = None
    ) -> List[JsonDict]:
        """The outputs of inputs parsed by `parse` (an error output stays as it is)."""
        sentences = [s for request in requests if isinstance(request, ParsedInput) for s in request.sentences]
        tagged = iter(self.tag_sentences(sentences, batch_size))
        outputs = []
        for request in requests:
            if not isinstance(request, ParsedInput):
                outputs.append(request)
                continue
            own = [next(tagged) for _ in request.sentences]

            def score(index, label, start, end, own=own):
                return self.scorer.probability(own[index][1], label, start, end)

            tags = [sentence_tags for sentence_tags, _ in own]
            outputs.append(self._inputs.output(request, tags, self.label_encoding, score, self.min_score))
        return outputs

    # ----------------------------------------------------------------------------------------
    # The network.

    @torch.inference_mode()
    def tag_sentences(self, sentences: Sequence[Sequence[Any]], batch_size: Optional[int] = None) -> List[tuple]:
        """Each sentence's `(tags, SentenceScores)`; sentences are `TextToken` lists."""
        tagged: List[Optional[tuple]] = [None] * len(sentences)
        for batch, logits, mask in self.batches(sentences, batch_size):
            for index, result in zip(batch, self.decode(logits, mask)):
                tagged[index] = result
        return tagged  # type: ignore[return-value]

    def batches(self, sentences: Sequence[Sequence[Any]], batch_size: Optional[int] = None):
        """`(indexes, logits, mask)` of the sentences in batches of similar length."""
        batch_size = batch_size or self.batch_size
        order = sorted(range(len(sentences)), key=lambda index: len(sentences[index]))
        for begin in range(0, len(order), batch_size):
            batch = order[begin : begin + batch_size]
            logits, mask = self.logits([sentences[index] for index in batch])
            yield batch, logits, mask

    def logits(self, sentences: Sequence[Sequence[Any]]):
        """The emission scores `(batch, time, tags)` of sentences of tokens, and the mask."""
        tensors, mask = self._tensors(sentences)
        with torch.inference_mode():
            return self._network(tensors, mask), mask

    def _tensors(self, sentences: Sequence[Sequence[Any]]):
        texts = [[self._inputs.model_text(token) for token in sentence] for sentence in sentences]
        lengths = [len(words) for words in texts]
        longest = max(lengths)
        mask = torch.arange(longest).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
        flat = [word for words in texts for word in words]
        # Each word's place in the padded (sentences, longest) batch.
        rows = numpy.repeat(numpy.arange(len(texts)), lengths)
        columns = numpy.concatenate([numpy.arange(length) for length in lengths])
        tensors: Dict[str, torch.Tensor] = {}
        for item in self._network.spec["inputs"]:
            if item["indexer"] == "elmo_characters":
                tensors[item["key"]] = batch_to_char_ids(texts).to(self.device)
                continue
            index = self._indexes[item["key"]]
            if item["indexer"] == "single_id":
                lower = item.get("lowercase_tokens", False)
                ids = numpy.zeros((len(texts), longest), dtype=numpy.int64)
                ids[rows, columns] = [index.get(word.lower() if lower else word, 1) for word in flat]
            else:  # characters: each distinct word's ids once
                width = max(item.get("min_padding_length", 0), max(len(word) for word in flat))
                distinct = {word: None for word in flat}
                table = numpy.zeros((len(distinct), width), dtype=numpy.int64)
                for position, word in enumerate(distinct):
                    table[position, : len(word)] = [index.get(char, 1) for char in word]
                    distinct[word] = position
                ids = numpy.zeros((len(texts), longest, width), dtype=numpy.int64)
                ids[rows, columns] = table[[distinct[word] for word in flat]]
            tensors[item["key"]] = torch.from_numpy(ids).to(self.device)
        return tensors, mask.to(self.device)

    def decode(self, logits: torch.Tensor, mask: torch.Tensor, temperature: Optional[float] = None) -> List[tuple]:
        """Each row's `(tags, SentenceScores)`, the scores at `temperature` (default: the
        tagger's)."""
        temperature = temperature or self.temperature
        lengths = mask.sum(1).tolist()
        if hasattr(self._network, "crf"):
            transitions, start, end = self._network.transition_scores()
            paths, _ = viterbi_decode_batch(logits, mask, transitions, start, end)
            scaled = [value / temperature for value in (logits, transitions, start, end)]
            scores = SentenceScores.batch_from_crf(scaled[0], mask, *scaled[1:])
        else:
            paths = logits.argmax(-1)
            probabilities = torch.softmax(logits / temperature, dim=-1)
            scores = [SentenceScores.from_probabilities(row[:n].cpu().numpy()) for row, n in zip(probabilities, lengths)]
        rows = paths.tolist()
        return [
            ([self.labels[tag] for tag in row[:length]], sentence_scores)
            for row, length, sentence_scores in zip(rows, lengths, scores)
        ]


def load(path: Union[str, os.PathLike], device: str = "cpu", **kwargs: Any):
    """A `Tagger` for a bundle directory; for a `model.tar.gz`, an `ArchiveTagger` (allennlp)."""
    if bundle_files.is_bundle(path):
        return Tagger(path, device=device, **kwargs)
    if Path(path).is_file():
        from ner_elmo.runtime.archive_tagger import ArchiveTagger

        return ArchiveTagger(path, device=device, **kwargs)
    raise FileNotFoundError(f"{path}: neither a bundle directory (with config.json) nor a model archive file")
