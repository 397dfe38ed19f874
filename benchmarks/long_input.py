"""
The `ner` predictor on long inputs: a 10,000-token text and a 1 MB document, one JSON line each.

    python benchmarks/long_input.py [--archive model.tar.gz] [--document FILE] [--tokens 10000]
        [--megabytes 1] [--batch-size 32] [--threads 1]

Without `--archive` the model is a seeded random `ner_crf_tagger` (100-d word embeddings, a
one-layer BiLSTM of 100 units a direction, BIOUL over PER/LOC/ORG/MISC, the `ner_conll`
reader): its tags are noise,
but it has entities whose offsets can be checked, and it shows what segmentation, batching and
output assembly cost around a model. Without `--document` the texts are generated (seeded
sentences of invented words, names, numbers, punctuation, some non-ASCII, paragraph breaks).

For each input it prints tokens, sentences (pieces), entities, seconds for segmentation alone
(spaCy's pipeline is built before timing), seconds for the whole prediction (JSON line in, JSON
line out), the output line's size and the process's peak RSS so far (`resource.getrusage`, a
high-water mark: it only grows). Every token and entity offset is checked against the input
text, after the peak RSS is read.
"""
import argparse
import json
import random
import sys
import time

import torch
from allennlp.common import Params
from allennlp.data import Vocabulary
from allennlp.models import Model

import ner_elmo.plugin  # noqa: F401  (registers the "ner" predictor)
from ner_elmo.data.dataset_readers.ner_conll import NerConllDatasetReader
from ner_elmo.data.text_segmentation import TextSegmenter, blank_english
from ner_elmo.predictors.ner import NerPredictor
from toolbox import benchmark_parser, each_thread_count, peak_rss_mib

TAGS = ["O"] + [f"{p}-{t}" for t in ("PER", "LOC", "ORG", "MISC") for p in "BILU"]
SYLLABLES = ["ka", "lo", "mi", "ren", "sa", "tor", "vel", "un", "de", "bri", "os", "qua"]
EXTRAS = ["Zoë", "Ørsted", "Çelik", "São", "naïve", "東京", "Москва", "القاهرة", "😀", "e.g.",
          "U.S."]


def invented_word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))


def generated_text(rng: random.Random, min_chars: int = 0, min_tokens: int = 0) -> str:
    """Paragraphs of sentences until both minimums are reached (tokens counted by split)."""
    parts, chars, tokens = [], 0, 0
    while chars < min_chars or tokens < min_tokens:
        words = []
        for _ in range(rng.randint(5, 30)):
            roll = rng.random()
            if roll < 0.15:
                words.append(invented_word(rng).capitalize())
            elif roll < 0.2:
                words.append(str(rng.randint(1, 2000)))
            elif roll < 0.23:
                words.append(rng.choice(EXTRAS))
            else:
                words.append(invented_word(rng))
            if rng.random() < 0.08:
                words[-1] += ","
        sentence = " ".join(words) + rng.choice([".", ".", ".", "!", "?"])
        separator = "\n\n" if rng.random() < 0.1 else " "
        parts.append(sentence + separator)
        chars += len(sentence) + len(separator)
        tokens += len(words)
    return "".join(parts)


def random_model(seed: int) -> Model:
    torch.manual_seed(seed)
    vocab = Vocabulary()
    rng = random.Random(seed)
    vocab.add_tokens_to_namespace(sorted({invented_word(rng) for _ in range(2000)}), "tokens")
    vocab.add_tokens_to_namespace(TAGS, "labels")
    params = {
        "type": "ner_crf_tagger",
        "label_encoding": "BIOUL",
        "text_field_embedder": {
            "token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 100}}
        },
        "encoder": {"type": "lstm", "input_size": 100, "hidden_size": 100, "bidirectional": True},
    }
    model = Model.from_params(vocab=vocab, params=Params(params))
    return model


def check_offsets(text: str, output: dict) -> int:
    assert "error" not in output, output.get("error")
    assert output["text"] == text
    previous_end = 0
    for token, (start, end) in zip(output["tokens"], output["token_offsets"]):
        assert text[start:end] == token and previous_end <= start, (token, start, end)
        previous_end = end
    for entity in output["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"], entity
        assert entity["start"] == output["token_offsets"][entity["token_start"]][0]
        assert entity["end"] == output["token_offsets"][entity["token_end"] - 1][1]
    return len(output["entities"])


def run(name: str, text: str, predictor: NerPredictor) -> None:
    started = time.perf_counter()
    pieces = sum(1 for _ in TextSegmenter(predictor._inputs.settings()["max_sentence_tokens"]).sentences(text))
    segmentation = time.perf_counter() - started

    line = json.dumps({"text": text}, ensure_ascii=False)
    started = time.perf_counter()
    output = predictor.predict_json(predictor.load_line(line))
    dumped = predictor.dump_line(output)
    seconds = time.perf_counter() - started
    peak = peak_rss_mib()
    assert dumped.count("\n") == 1
    entities = check_offsets(text, output)
    print(
        f"{name}: {len(text):,} chars, {len(output['tokens']):,} tokens, {pieces:,} sentences, "
        f"{entities:,} entities (offsets checked) | segmentation {segmentation:.2f} s, "
        f"prediction {seconds:.2f} s ({len(output['tokens']) / seconds:,.0f} tokens/s) | "
        f"output line {len(dumped.encode('utf-8')) / 2**20:.1f} MiB | peak RSS {peak:.0f} MiB"
    )


def main(argv=None) -> int:
    # More threads can be far slower on a busy machine (synchronisation between them).
    parser = benchmark_parser(__doc__, threads=[1])
    parser.add_argument("--archive", help="a trained model.tar.gz (default: a random model)")
    parser.add_argument("--document", help="a UTF-8 text file to use as the long document")
    parser.add_argument("--tokens", type=int, default=10_000, help="words in the first input")
    parser.add_argument("--megabytes", type=float, default=1.0, help="generated document size")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per forward pass")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    print(f"peak RSS after imports: {peak_rss_mib():.0f} MiB")
    for run_args in each_thread_count(args):
        measure(run_args)
    return 0


def measure(args: argparse.Namespace) -> None:
    """Both inputs through the predictor with `args.threads` torch threads."""
    if args.archive:
        from ner_elmo.service.loading import load_serving_predictor

        predictor = load_serving_predictor(args.archive, batch_size=args.batch_size)
    else:
        reader = NerConllDatasetReader()
        predictor = NerPredictor(random_model(args.seed), reader, batch_size=args.batch_size)
    started = time.perf_counter()
    blank_english()
    print(f"spaCy blank English pipeline built in {time.perf_counter() - started:.2f} s")
    print(f"peak RSS with the model: {peak_rss_mib():.0f} MiB (batch size {args.batch_size})")

    rng = random.Random(args.seed)
    run(f"text of {args.tokens:,}+ words", generated_text(rng, min_tokens=args.tokens), predictor)
    if args.document:
        with open(args.document, encoding="utf-8") as handle:
            document = handle.read()
        name = args.document
    else:
        document = generated_text(rng, min_chars=int(args.megabytes * 2**20))
        name = f"{args.megabytes:g} MiB document"
    run(name, document, predictor)


if __name__ == "__main__":
    sys.exit(main())
