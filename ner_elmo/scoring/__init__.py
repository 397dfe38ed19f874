"""
Pure-python scorers (no allennlp, no torch).

`ner_elmo.scoring.conlleval` gives exactly the numbers and the printout of the CoNLL
`conlleval` Perl script; `ner_elmo.scoring.reports` (seqeval and scikit-learn) gives
entity-level and token-level classification reports.
"""
from ner_elmo.scoring.conlleval import (
    ChunkScores,
    ConllevalAccumulator,
    ConllevalCounts,
    ConllevalFormatError,
    ConllevalResult,
    OverallScores,
    evaluate,
    evaluate_file,
    evaluate_lines,
    to_conlleval_tags,
)

__all__ = [
    "ChunkScores",
    "ConllevalAccumulator",
    "ConllevalCounts",
    "ConllevalFormatError",
    "ConllevalResult",
    "OverallScores",
    "evaluate",
    "evaluate_file",
    "evaluate_lines",
    "to_conlleval_tags",
]
