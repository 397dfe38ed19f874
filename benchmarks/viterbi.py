"""
CRF Viterbi decoding, stock allennlp (one sentence at a time) vs ner_elmo's batched decoder.

    python benchmarks/viterbi.py [--conll FILE] [--batch-size 64] [--batches 40] [--threads 2]

Sentence lengths come from a CoNLL file when given (env NER_ELMO_CONLL_DEV otherwise), else from
a fixed-seed distribution with CoNLL-2003's mean length; emissions are random. Tags: BIOUL over
PER/LOC/ORG/MISC (17 tags) with BIOUL constraints, as the NER model decodes. Both decoders see
the same batches; their paths are checked to be identical before timing is reported.
"""
import argparse
import os
import random
import time

import torch
from allennlp.modules.conditional_random_field import ConditionalRandomField, allowed_transitions

from ner_elmo.modules.conditional_random_field.batched_viterbi_crf import (
    BatchedViterbiConditionalRandomField,
)
from toolbox import benchmark_parser, conll_sentences, each_thread_count

TAGS = ["O"] + [f"{p}-{t}" for t in ("PER", "LOC", "ORG", "MISC") for p in "BILU"]


def sentence_lengths(path, count, seed):
    if path and os.path.exists(path):
        lengths = [len(sentence) for sentence in conll_sentences(path)]
        return [lengths[i % len(lengths)] for i in range(count)]
    rng = random.Random(seed)
    return [max(1, min(60, int(rng.expovariate(1 / 14.5)) + 1)) for _ in range(count)]


def main():
    parser = benchmark_parser(__doc__, threads=[2])
    parser.add_argument("--conll", default=os.environ.get("NER_ELMO_CONLL_DEV"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    for run in each_thread_count(args):
        measure(run)


def measure(args: argparse.Namespace) -> None:
    """Both decoders on the same seeded batches with `args.threads` threads."""
    torch.manual_seed(0)

    constraints = allowed_transitions("BIOUL", dict(enumerate(TAGS)))
    stock = ConditionalRandomField(len(TAGS), constraints, include_start_end_transitions=False)
    torch.nn.init.normal_(stock.transitions)
    batched = BatchedViterbiConditionalRandomField(len(TAGS), None, include_start_end_transitions=False)
    batched.load_state_dict(stock.state_dict())
    stock.to(args.device)
    batched.to(args.device)

    lengths = sentence_lengths(args.conll, args.batch_size * args.batches, seed=1)
    batches = []
    for b in range(args.batches):
        chunk = torch.tensor(lengths[b * args.batch_size : (b + 1) * args.batch_size])
        logits = torch.randn(len(chunk), int(chunk.max()), len(TAGS), device=args.device) * 3
        mask = torch.arange(int(chunk.max()), device=args.device).unsqueeze(0) < chunk.to(args.device).unsqueeze(1)
        batches.append((logits, mask))

    results = {}
    for name, crf in (("stock", stock), ("batched", batched)):
        crf.viterbi_tags(*batches[0])  # warm-up
        start = time.perf_counter()
        paths = [crf.viterbi_tags(logits, mask) for logits, mask in batches]
        if args.device != "cpu":
            torch.cuda.synchronize()
        results[name] = (time.perf_counter() - start, paths)
    identical = all(
        [p for p, _ in a] == [p for p, _ in b] for a, b in zip(results["stock"][1], results["batched"][1])
    )
    sentences = args.batch_size * args.batches
    print(f"Viterbi decode, {len(TAGS)} BIOUL tags, {args.batches} batches of {args.batch_size}, "
          f"mean length {sum(lengths) / len(lengths):.1f}, device {args.device}, threads {args.threads}")
    print(f"{'decoder':<10}{'seconds':>10}{'sentences/s':>14}")
    for name in ("stock", "batched"):
        seconds = results[name][0]
        print(f"{name:<10}{seconds:>10.3f}{sentences / seconds:>14.0f}")
    print(f"speed-up: {results['stock'][0] / results['batched'][0]:.1f}x; identical paths: {identical}")


if __name__ == "__main__":
    main()
