"""
Where a tagger's errors are: entity F1 split by whether every word of the entity occurs in the
training file (lowercased, as the GloVe indexer sees it) or some word does not.

    python benchmarks/seen_entities.py --train ../shared/data/conll2003/eng.train \
        RUN/dev_report/predictions.conll RUN/test_report/predictions.conll

Reads `predictions.conll` files (`token gold predicted`, what `ner-report` and the accuracy
runner write) and prints, per file and group, the gold and predicted entity counts and the
conlleval-style F1 (exact span and type). A predicted entity is grouped by its own words, a gold
one by its own, so the groups' counts add up to the file's.
"""
from typing import Dict, List, Set, Tuple

from ner_elmo.reporting.error_analysis import entity_spans
from toolbox import benchmark_parser, conll_blocks, conll_sentences


def training_words(path: str) -> Set[str]:
    return {token.lower() for sentence in conll_sentences(path) for token in sentence}


def sentences(path: str) -> List[List[Tuple[str, str, str]]]:
    """The sentences of a predictions file, every line `token gold predicted`."""
    blocks = conll_blocks(path, keep_docstart=True, columns=("token", "gold", "predicted"))
    return [[tuple(fields) for fields in block] for block in blocks]


def split_scores(path: str, known: Set[str]) -> Dict[str, Tuple[int, int, int]]:
    """{group: (gold, predicted, correct)} for the groups "seen" and "unseen"."""
    counts = {"seen": [0, 0, 0], "unseen": [0, 0, 0]}
    for sentence in sentences(path):
        words = [token.lower() for token, _, _ in sentence]
        gold = set(entity_spans([tag for _, tag, _ in sentence]))
        predicted = set(entity_spans([tag for _, _, tag in sentence]))

        def group(span) -> str:
            return "seen" if all(word in known for word in words[span.start:span.end]) else "unseen"

        for index, spans in enumerate((gold, predicted, gold & predicted)):
            for span in spans:
                counts[group(span)][index] += 1
    return {name: tuple(values) for name, values in counts.items()}


def f1(gold: int, predicted: int, correct: int) -> float:
    return 200.0 * correct / (gold + predicted) if gold + predicted else 0.0


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--train", required=True, help="the training file (CoNLL columns)")
    parser.add_argument("predictions", nargs="+", help="predictions.conll files")
    args = parser.parse_args()
    known = training_words(args.train)
    print(f"{'file':60} {'entities':24} {'gold':>6} {'pred':>6} {'F1':>6}")
    for path in args.predictions:
        for name, (gold, predicted, correct) in split_scores(path, known).items():
            label = "all words in training" if name == "seen" else "a word not in training"
            print(f"{path[-60:]:60} {label:24} {gold:6d} {predicted:6d} {f1(gold, predicted, correct):6.2f}")


if __name__ == "__main__":
    main()
