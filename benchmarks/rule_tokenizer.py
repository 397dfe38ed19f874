"""
The pure-Python tokenizer (`ner_elmo.data.rule_tokenizer`) against spaCy's, side by side on
corpora: documents whose sentences or tokens differ (the first differences printed), and the
time each takes.

    python benchmarks/rule_tokenizer.py $CORPUS/bbc_news.txt $CORPUS/reuters21578.txt --chars 1500000
"""
import time
from pathlib import Path

from ner_elmo.data.rule_tokenizer import RuleTokenizer
from ner_elmo.data.text_segmentation import TextSegmenter, blank_english
from toolbox import benchmark_parser


def compare(path: Path, chars: int, with_spacy: TextSegmenter, with_rules: TextSegmenter) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")[:chars]
    documents = text.split("\n\n")
    differing = tokens = 0
    spacy_seconds = rules_seconds = 0.0
    for document in documents:
        started = time.perf_counter()
        expected = list(with_spacy.sentences(document))
        middle = time.perf_counter()
        got = list(with_rules.sentences(document))
        rules_seconds += time.perf_counter() - middle
        spacy_seconds += middle - started
        tokens += sum(len(sentence) for sentence in expected)
        if got != expected:
            differing += 1
            if differing <= 5:
                flat_expected = [token for sentence in expected for token in sentence]
                flat_got = [token for sentence in got for token in sentence]
                at = next((i for i, (a, b) in enumerate(zip(flat_expected, flat_got)) if a != b), None)
                where = "sentence boundaries" if at is None else f"{flat_expected[at - 2 : at + 3]} vs {flat_got[at - 2 : at + 3]}"
                print(f"  differs: {where}")
    print(
        f"{path.name}: {len(documents)} documents, {tokens:,} tokens; documents that differ: {differing}; "
        f"spaCy {spacy_seconds:.1f} s, rules {rules_seconds:.1f} s ({spacy_seconds / rules_seconds:.2f}x)"
    )


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("corpora", type=Path, nargs="+", help="text files, documents separated by blank lines")
    parser.add_argument("--chars", type=int, default=1_500_000, help="characters read from each file")
    args = parser.parse_args()
    rules = RuleTokenizer(RuleTokenizer.rules_of(blank_english()))
    with_spacy, with_rules = TextSegmenter(), TextSegmenter(rules=rules)
    for path in args.corpora:
        compare(path, args.chars, with_spacy, with_rules)


if __name__ == "__main__":
    main()
