"""
The `ner_elmo` spaCy component against the Python API on the same texts, side by side: tokens
per second of `nlp.pipe` (spaCy's blank English tokenizer, then the tagger, then the entities
put on spaCy's tokens) and of `tagger.tag_batch`, and whether they find the same entities.

    OMP_NUM_THREADS=1 python benchmarks/spacy_component.py BUNDLE --corpus $CORPUS/bbc_news.txt
"""
import statistics
import time
from pathlib import Path

from toolbox import benchmark_parser, read_documents


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("bundle")
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--words", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    texts, _ = read_documents(args.corpus, args.documents, args.words)
    import spacy

    import ner_elmo

    tagger = ner_elmo.load(args.bundle, batch_size=args.batch_size)
    nlp = spacy.blank("en")
    nlp.add_pipe("ner_elmo", config={"model": args.bundle, "batch_size": args.batch_size})
    tagger.tag_batch(texts[:32])
    list(nlp.pipe(texts[:32]))  # warm-up
    rates = {"api": [], "spacy": []}
    tokens = sum(len(output["tokens"]) for output in tagger.predict_batch_json([{"text": text} for text in texts]))
    for _ in range(args.rounds):
        started = time.perf_counter()
        by_api = tagger.tag_batch(texts)
        rates["api"].append(tokens / (time.perf_counter() - started))
        started = time.perf_counter()
        docs = list(nlp.pipe(texts, batch_size=len(texts)))
        rates["spacy"].append(tokens / (time.perf_counter() - started))
    same = [[(e.start, e.end, e.label) for e in entities] for entities in by_api] == [
        [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents] for doc in docs
    ]
    api, component = statistics.median(rates["api"]), statistics.median(rates["spacy"])
    print(
        f"{len(texts)} texts, {tokens:,} model tokens, median of {args.rounds}: Python API {api:,.0f} tokens/s, "
        f"spaCy nlp.pipe {component:,.0f} tokens/s ({100 * component / api:.0f}%); same entities: {same}"
    )


if __name__ == "__main__":
    main()
