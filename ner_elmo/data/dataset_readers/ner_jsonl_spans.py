"""
The `ner_jsonl_spans` dataset reader: texts with entity spans by character offsets, as doccano,
Label Studio and spaCy export them (`ner_elmo.data.span_files`).
"""
import logging
from typing import Dict, Iterable, Optional

from allennlp.common.checks import ConfigurationError
from allennlp.data.dataset_readers.dataset_reader import DatasetReader, PathOrStr
from allennlp.data.instance import Instance
from allennlp.data.token_indexers import TokenIndexer

from ner_elmo.data.dataset_readers.ner_reader import NerDatasetReader, TaggedSentence, paused_garbage_collection
from ner_elmo.data.errors import DataFormatError
from ner_elmo.data.span_files import POLICIES, AlignmentReport, align_record, read_span_records
from ner_elmo.data.tag_schemes import from_spans
from ner_elmo.data.text_segmentation import TextSegmenter

logger = logging.getLogger(__name__)


@DatasetReader.register("ner_jsonl_spans")
class NerJsonlSpansDatasetReader(NerDatasetReader):
    """
    Reads annotated texts whose entities are character-offset spans: doccano's JSONL export
    (`{"text": ..., "label": [[start, end, "TYPE"], ...]}`, or its `"entities"` form), Label
    Studio's JSON-min export (`"label": [{"start", "end", "labels": ["TYPE"]}]`, JSON lines or one
    JSON array), and spaCy's `.spacy` DocBin files. Any entity types.

    Each text is split into sentences and tokenized exactly as the `ner` predictor does (the same
    `TextSegmenter` and limits), so a model trained on these files sees at prediction time what
    it saw in training; every sentence becomes one `Instance` (fields: see `NerDatasetReader`),
    its tags the spans in `label_encoding`. A text without spans gives sentences of `O`s. A
    record that carries its own `"tokens"` (spelling its text, as `allennlp ner-convert` writes
    from CoNLL, GMB or DocBin data) is one sentence of those tokens: the data's tokenization.

    A span that does not fall on token boundaries, overlaps another, crosses a sentence break or
    lies outside its text is handled by `misaligned`: `"error"` (the default) raises
    `ner_elmo.data.errors.DataFormatError` naming the file, line and span; `"expand"` widens
    spans to the tokens they touch (and leaves out those that still cannot be kept); `"skip"`
    leaves such spans out. What was changed is counted and logged (a warning per file, with
    examples); `last_report` holds the counts of the last file read. Malformed input (a line
    that is not a JSON object, no `"text"`, a span of another shape) is a `DataFormatError`
    naming the file and line.

    Registered as a `DatasetReader` with name "ner_jsonl_spans".

    # Parameters

    token_indexers : `Dict[str, TokenIndexer]`, optional (default=`{"tokens": SingleIdTokenIndexer()}`)
        How the tokens are indexed.
    misaligned : `str`, optional (default=`"error"`)
        `"error"`, `"expand"` or `"skip"` (see above).
    label_encoding : `str`, optional (default=`"BIOUL"`)
        The scheme the tags are written in (use the model's `label_encoding`).
    label_namespace : `str`, optional (default=`"labels"`)
        Vocabulary namespace of the `tags` field.
    max_sentence_tokens : `int`, optional (default=`200`)
        Longer sentences are cut as the `ner` predictor cuts them (keep the two equal).
    max_run_chars : `int`, optional (default=`50`)
        As for the `ner` predictor's tokenizer.
    **kwargs
        Passed to `DatasetReader` (e.g. `max_instances`).
    """

    def __init__(
        self,
        token_indexers: Optional[Dict[str, TokenIndexer]] = None,
        misaligned: str = "error",
        label_encoding: str = "BIOUL",
        label_namespace: str = "labels",
        max_sentence_tokens: int = 200,
        max_run_chars: int = 50,
        **kwargs,
    ) -> None:
        super().__init__(
            token_indexers=token_indexers, label_encoding=label_encoding, label_namespace=label_namespace, **kwargs
        )
        if misaligned not in POLICIES:
            raise ConfigurationError(f"misaligned must be one of {', '.join(POLICIES)}, not {misaligned!r}")
        self.misaligned = misaligned
        self._segmenter = TextSegmenter(max_sentence_tokens=max_sentence_tokens, max_run_chars=max_run_chars)
        self.last_report = AlignmentReport()

    def _read(self, file_path: PathOrStr) -> Iterable[Instance]:
        path = str(file_path)
        report = AlignmentReport()
        sentences, encoded = [], []
        with paused_garbage_collection():
            for record in read_span_records(path):
                for sentence in align_record(record, self._segmenter, self.misaligned, report):
                    words = [token.text for token in sentence.tokens]
                    tags = from_spans(sentence.spans, len(words), self.label_encoding)
                    sentences.append(TaggedSentence(words, [record.line] * len(words), {"ner": tags}))
                    encoded.append({"ner": tags})
        if not sentences:
            raise DataFormatError(path, None, "no text with tokens in it")
        self.last_report = report
        if report.summary():
            logger.warning("%s: %s; e.g. %s", path, report.summary(), " | ".join(report.examples))
        yield from self._instances(sentences, encoded)
