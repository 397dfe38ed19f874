"""
What every bundled tagger does around its network, in numpy and without torch: read the
bundle's data, parse inputs as the `ner` predictor does (`ner_elmo.runtime.inputs`), batch
sentences by length, turn tokens into the network's ids, decode (`ner_elmo.modules.viterbi`)
and score entities (`ner_elmo.modules.entity_confidence`). `Tagger` (torch) and `OnnxTagger`
(onnxruntime) differ only in what computes the emission scores.
"""
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy

from ner_elmo.modules.entity_confidence import EntityScorer, SentenceScores
from ner_elmo.modules.viterbi import viterbi_decode_numpy
from ner_elmo.runtime import bundle as bundle_files
from ner_elmo.runtime.inputs import InputReader, JsonDict, ParsedInput
from ner_elmo.runtime.text_tagger import TextTagger


class BundleTagger(TextTagger):
    """
    The part of a bundled tagger that does not depend on its runtime. Subclasses implement
    `logits`; prefer `ner_elmo.load`.

    # Parameters

    directory : the bundle.
    batch_size : `int`, optional (default = `64`)
        Sentences per forward pass.
    min_score : `float`, optional (default = `None`)
        Leave out entities scoring below it.
    temperature : `float`, optional (default = the bundle's, else `1.0`)
        Entity scores are computed with every score of the network divided by it (fitted on dev
        data by `allennlp ner-calibrate`); the tags do not depend on it.
    max_sentence_tokens, max_token_chars, max_run_chars, max_text_chars, max_json_depth :
        As for the `ner` predictor; by default the bundle's (the archive's predictor settings).
    """

    def __init__(
        self,
        directory: Union[str, os.PathLike],
        batch_size: int = 64,
        min_score: Optional[float] = None,
        temperature: Optional[float] = None,
        **input_settings: Any,
    ) -> None:
        self.directory = Path(directory)
        self.config = bundle_files.read_config(self.directory)
        self.vocabulary = bundle_files.read_vocabulary(self.directory)
        self.spec = self.config["model"]
        self.label_encoding: str = self.spec["label_encoding"]
        self.labels: List[str] = self.vocabulary[self.spec["label_namespace"]]
        self._indexes = {
            item["key"]: {token: index for index, token in enumerate(self.vocabulary[item["namespace"]])}
            for item in self.spec["inputs"]
            if item.get("namespace")
        }
        rules = bundle_files.read_tokenizer(self.directory, self.config)
        self._inputs = InputReader(**{**self.config.get("inputs", {}), **input_settings}, rules=rules)
        self.scorer = EntityScorer(self.labels, self.label_encoding)
        self.batch_size = batch_size
        self.min_score = min_score
        self.temperature = float(temperature or self.config.get("scores", {}).get("temperature", 1.0))

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
    # Sentences through the network.

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
        raise NotImplementedError

    def decode(self, logits, mask, temperature: Optional[float] = None) -> List[tuple]:
        """Each row's `(tags, SentenceScores)` of `logits`' batch (see `decode_numpy`)."""
        raise NotImplementedError

    def encode(self, sentences: Sequence[Sequence[Any]]) -> Tuple[Dict[str, Any], numpy.ndarray, List[List[str]]]:
        """
        The network's inputs for sentences of tokens, as numpy arrays: for a word input, the ids
        `(sentences, longest)`; for a character input, each distinct word's character ids
        `(words, width)` and each token's row among them `(sentences, longest)`. Also the mask
        `(sentences, longest)` and the words themselves (an ELMo input reads those).
        """
        texts = [[self._inputs.model_text(token) for token in sentence] for sentence in sentences]
        lengths = [len(words) for words in texts]
        longest = max(lengths)
        mask = numpy.arange(longest)[None, :] < numpy.array(lengths)[:, None]
        flat = [word for words in texts for word in words]
        # Each word's place in the padded (sentences, longest) batch.
        rows = numpy.repeat(numpy.arange(len(texts)), lengths)
        columns = numpy.concatenate([numpy.arange(length) for length in lengths])
        arrays: Dict[str, Any] = {}
        for item in self.spec["inputs"]:
            if item["indexer"] == "elmo_characters":
                continue
            index = self._indexes[item["key"]]
            if item["indexer"] == "single_id":
                lower = item.get("lowercase_tokens", False)
                ids = numpy.zeros((len(texts), longest), dtype=numpy.int64)
                ids[rows, columns] = [index.get(word.lower() if lower else word, 1) for word in flat]
                arrays[item["key"]] = ids
            else:  # characters: each distinct word's ids once
                width = max(item.get("min_padding_length", 0), max(len(word) for word in flat))
                distinct = {word: None for word in flat}
                table = numpy.zeros((len(distinct), width), dtype=numpy.int64)
                for position, word in enumerate(distinct):
                    table[position, : len(word)] = [index.get(char, 1) for char in word]
                    distinct[word] = position
                # Padding positions point at row 0: their encodings are masked out downstream.
                rows_of = numpy.zeros((len(texts), longest), dtype=numpy.int64)
                rows_of[rows, columns] = [distinct[word] for word in flat]
                arrays[item["key"]] = (table, rows_of)
        return arrays, mask, texts

    def decode_numpy(
        self, logits: numpy.ndarray, mask: numpy.ndarray, crf: Optional[Tuple[numpy.ndarray, ...]], temperature=None
    ) -> List[tuple]:
        """Each row's `(tags, SentenceScores)` from numpy emission scores; `crf` the decoder's
        `(transitions, start, end)`, None for a softmax tagger; scores at `temperature`."""
        temperature = temperature or self.temperature
        lengths = mask.sum(axis=1)
        if crf is not None:
            paths, _ = viterbi_decode_numpy(logits, lengths, *crf)
            transitions, start, end = (value / temperature for value in crf)
            scores = SentenceScores.batch_from_crf(logits / temperature, mask, transitions, start, end)
        else:
            paths = logits.argmax(axis=-1)
            scaled = logits.astype(numpy.float64) / temperature
            probabilities = numpy.exp(scaled - scaled.max(axis=-1, keepdims=True))
            probabilities /= probabilities.sum(axis=-1, keepdims=True)
            scores = [SentenceScores.from_probabilities(row[:n]) for row, n in zip(probabilities, lengths)]
        return [
            ([self.labels[tag] for tag in row[:length]], sentence_scores)
            for row, length, sentence_scores in zip(paths.tolist(), lengths.tolist(), scores)
        ]
