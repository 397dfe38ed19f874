"""
The `ner_elmo` spaCy pipeline component: a trained tagger (a bundle, or a `model.tar.gz`) in
any spaCy pipeline.

    nlp = spacy.blank("en")
    nlp.add_pipe("ner_elmo", config={"model": "runs/conll/bundle"})
    doc = nlp("Angela Merkel met Emmanuel Macron in Berlin.")
    [(ent.text, ent.label_, ent._.ner_elmo_score) for ent in doc.ents]

The factory is found through the `spacy_factories` entry point, so no import is needed. The
tagger reads the doc's text as the `ner` predictor reads raw text (its own sentences and tokens,
those the model was trained on); its entities are then put on the pipeline's tokens by character
offsets (widened to the tokens they touch where the two tokenizations differ), so the
pipeline's tokenization is kept. Existing entities stay; a new one that overlaps one of them is
left out, unless `overwrite` is set.
"""
from typing import Iterable, Iterator, List, Optional

from spacy.language import Language
from spacy.tokens import Doc, Span


@Language.factory(
    "ner_elmo",
    default_config={
        "model": None,
        "device": "cpu",
        "batch_size": 64,
        "min_score": None,
        "overwrite": False,
        "score_extension": "ner_elmo_score",
    },
)
def make_ner_elmo(
    nlp: Language,
    name: str,
    model: Optional[str],
    device: str,
    batch_size: int,
    min_score: Optional[float],
    overwrite: bool,
    score_extension: str,
) -> "NerElmoComponent":
    return NerElmoComponent(name, model, device, batch_size, min_score, overwrite, score_extension)


class NerElmoComponent:
    """
    Sets `doc.ents` from a ner_elmo tagger, each entity's probability in
    `span._.<score_extension>`.

    # Parameters

    model : `str`
        A bundle directory (`allennlp ner-export`) or a `model.tar.gz` (needs allennlp).
    device : `str`, optional (default = `"cpu"`)
    batch_size : `int`, optional (default = `64`)
        Sentences per forward pass; `nlp.pipe` tags each of its batches of docs together.
    min_score : `float`, optional (default = `None`)
        Leave out entities scoring below it.
    overwrite : `bool`, optional (default = `False`)
        Replace the doc's existing entities instead of keeping them.
    score_extension : `str`, optional (default = `"ner_elmo_score"`)
        The `Span` extension that holds each entity's score.
    """

    def __init__(
        self,
        name: str,
        model: Optional[str],
        device: str = "cpu",
        batch_size: int = 64,
        min_score: Optional[float] = None,
        overwrite: bool = False,
        score_extension: str = "ner_elmo_score",
    ) -> None:
        if not model:
            raise ValueError(f'the "{name}" component needs a model: nlp.add_pipe("{name}", config={{"model": PATH}})')
        import ner_elmo

        self.name = name
        self.tagger = ner_elmo.load(model, device=device, min_score=min_score)
        self.batch_size = batch_size
        self.overwrite = overwrite
        self.score_extension = score_extension
        if not Span.has_extension(score_extension):
            Span.set_extension(score_extension, default=None)

    def __call__(self, doc: Doc) -> Doc:
        (entities,) = self.tagger.tag_batch([doc.text], self.batch_size)
        return self._set(doc, entities)

    def pipe(self, docs: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        batch: List[Doc] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._tag(batch)
                batch = []
        if batch:
            yield from self._tag(batch)

    def _tag(self, docs: List[Doc]) -> Iterator[Doc]:
        for doc, entities in zip(docs, self.tagger.tag_batch([doc.text for doc in docs], self.batch_size)):
            yield self._set(doc, entities)

    def _set(self, doc: Doc, entities) -> Doc:
        kept = [] if self.overwrite else list(doc.ents)
        taken = {index for span in kept for index in range(span.start, span.end)}
        for entity in entities:
            span = doc.char_span(entity.start, entity.end, label=entity.label, alignment_mode="expand")
            if span is None or any(index in taken for index in range(span.start, span.end)):
                continue
            span._.set(self.score_extension, entity.score)
            taken.update(range(span.start, span.end))
            kept.append(span)
        doc.ents = sorted(kept, key=lambda span: span.start)
        return doc
