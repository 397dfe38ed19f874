"""
allennlp's `character_encoding` against `distinct_character_encoding` (the same weights) on one
training-sized batch of real sentences: tokens and distinct words in the batch, milliseconds of a
forward and backward pass of each, interleaved (`--repeats` rounds), and the largest difference
between their outputs.

    OMP_NUM_THREADS=1 python benchmarks/char_encoder.py --conll ../shared/data/conll2003/eng.train \
        [--sentences 64] [--min-length 20] [--max-length 24] [--steps 20] [--repeats 3]

The embedder is the configs' (16-dimensional characters, 128 filters of width 3, ReLU).
"""
import statistics
import time

import torch

import ner_elmo.plugin  # noqa: F401  (registers distinct_character_encoding)
from allennlp.common import Params
from allennlp.modules.token_embedders import TokenEmbedder
from toolbox import benchmark_parser, conll_sentences


def character_batch(sentences):
    """(sentences, tokens, characters) ids, 0 for padding, one id per distinct character."""
    steps = max(map(len, sentences))
    width = max(3, max(len(word) for sentence in sentences for word in sentence))
    ids = {}
    batch = torch.zeros(len(sentences), steps, width, dtype=torch.long)
    for i, sentence in enumerate(sentences):
        for j, word in enumerate(sentence):
            batch[i, j, : len(word)] = torch.tensor([ids.setdefault(c, len(ids) + 1) for c in word])
    return batch, len(ids)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--conll", required=True)
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--min-length", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=24)
    parser.add_argument("--steps", type=int, default=20, help="forward + backward passes per timing")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sentences = [s for s in conll_sentences(args.conll) if args.min_length <= len(s) <= args.max_length]
    batch, characters = character_batch(sentences[: args.sentences])
    rows = batch.view(-1, batch.size(-1))
    tokens = int((rows != 0).any(1).sum())
    distinct = torch.unique(rows, dim=0).size(0)
    print(f"{batch.size(0)} sentences, {tokens} tokens, {distinct} distinct rows (words and padding), "
          f"{batch.size(1)} steps, {batch.size(2)} characters, {torch.get_num_threads()} threads")

    def embedder(kind):
        return TokenEmbedder.from_params(Params({
            "type": kind, "embedding": {"embedding_dim": 16, "num_embeddings": characters + 1},
            "encoder": {"type": "cnn", "embedding_dim": 16, "num_filters": 128, "ngram_filter_sizes": [3],
                        "conv_layer_activation": "relu"},
        }))

    torch.manual_seed(0)
    stock = embedder("character_encoding")
    ours = embedder("distinct_character_encoding")
    ours.load_state_dict(stock.state_dict())
    print(f"largest output difference: {(stock(batch) - ours(batch)).abs().max().item():.3g}")
    times = {"character_encoding": [], "distinct_character_encoding": []}
    for _ in range(args.repeats):
        for name, module in (("character_encoding", stock), ("distinct_character_encoding", ours)):
            started = time.perf_counter()
            for _ in range(args.steps):
                module(batch).pow(2).sum().backward()
            times[name].append((time.perf_counter() - started) / args.steps * 1000)
    for name, values in times.items():
        print(f"{name}: forward + backward {' / '.join(f'{v:.1f}' for v in values)} ms")
    ratio = statistics.median(times["character_encoding"]) / statistics.median(times["distinct_character_encoding"])
    print(f"median ratio: {ratio:.2f}x")


if __name__ == "__main__":
    main()
