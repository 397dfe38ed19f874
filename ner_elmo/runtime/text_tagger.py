"""
The Python API's shape, shared by every kind of tagger: `tagger(text)` and `tagger.tag_batch`
return `Entity` tuples. Imports neither torch nor allennlp.
"""
from typing import Iterable, List, NamedTuple, Optional, Sequence, Union

from ner_elmo.runtime.inputs import JsonDict

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
