"""
ELMo biLM throughput, stock allennlp `_ElmoBiLm` vs ner_elmo's `FastElmoBiLm`, side by side
in one process on the same real sentences and the same full-size random weights.

    python benchmarks/elmo_throughput.py [--conll FILE] [--sentences 96] [--batch-size 32]
        [--sort-by-length] [--options OPTIONS.json] [--cache-dir DIR] [--threads 2]
        [--repeats 3] [--device cpu] [--dtype bfloat16] [--no-stock]

Sentences: the first N of a CoNLL file (env NER_ELMO_CONLL_DEV by default), batched in file
order as a predictor sees them, or with --sort-by-length as allennlp's bucket sampler groups
them for training.  Weights: seeded random ones for the options (default: the original
2x4096_512_2048cnn_2xhighway architecture), written once into --cache-dir; speed does not
depend on weight values.  Both models run in eval mode under no_grad; stock's stateful LSTM is
reset before every batch so both compute the same thing (the outputs are compared).

Other processes share the CPU, so each pass runs stock, ours with a cold character cache
(emptied at the start of the pass) and ours warm (every word cached) batch after batch, and a
speed-up is the median over passes of the ratio within a pass.  Printed: tokens/s (real
tokens, <S>/</S> not counted) of the median pass by wall time and by process CPU time (steadier
on a shared CPU; with several threads it includes their spinning), speed-ups, memory (RSS, or
CUDA allocation, of each loaded model and its peak growth over a pass), and the physical limit:
model FLOPs per token counted from the options against a measured large float32 matmul rate.
"""
import argparse
import gc
import hashlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch

from ner_elmo.modules.elmo import FastElmoBiLm, batch_to_char_ids
from ner_elmo.modules.elmo.char_cache import CharacterEmbeddingCache
from ner_elmo.modules.elmo.weights_io import read_options
from toolbox import (
    benchmark_parser,
    conll_sentences,
    each_thread_count,
    full_size_elmo_options,
    peak_rss_mib,
    random_elmo_files,
    rss_mib,
)

def cached_random_elmo(options: Dict, cache_dir: Path, seed: int):
    """Options and weight paths of seeded random weights for `options`, written once per options and seed."""
    key = hashlib.sha1(json.dumps(options, sort_keys=True).encode()).hexdigest()[:12]
    return random_elmo_files(options, cache_dir / f"elmo-{key}-seed{seed}", seed)


def flops_per_position(options: Dict) -> Dict[str, float]:
    """Multiply-adds x 2 of one position (token, <S> or </S>), by part."""
    cnn, lstm = options["char_cnn"], options["lstm"]
    chars = cnn.get("max_characters_per_token", 50)
    char_dim = cnn["embedding"]["dim"]
    n_filters = sum(number for _, number in cnn["filters"])
    projection, cell = lstm["projection_dim"], lstm["dim"]
    convolutions = sum((chars - width + 1) * width * char_dim * number for width, number in cnn["filters"])
    highway = cnn["n_highway"] * n_filters * 2 * n_filters
    char_cnn = 2 * (convolutions + highway + n_filters * projection)
    directions = 2 * lstm["n_layers"]
    lstm_input = directions * 2 * projection * 4 * cell
    lstm_recurrent = directions * 2 * (projection * 4 * cell + cell * projection)
    return {"char_cnn": char_cnn, "lstm_input": lstm_input, "lstm_recurrent": lstm_recurrent}


def matmul_rate(device: torch.device, size: int = 2048, seconds: float = 1.0) -> float:
    """Best float32 GFLOP/s of a large square matmul."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or best == 0.0:
        _synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _synchronize(device)
        best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    return rss_mib()


class PeakMemory:
    """Growth of RSS (sampled every 2 ms) or of CUDA allocation, in MB, at its peak in the block."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start = _memory_mb(device)
        self.peak = self.start

    @property
    def growth(self) -> float:
        return self.peak - self.start

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._running = True
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, rss_mib())
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._running = False
            self._thread.join()
            self.peak = max(self.peak, rss_mib())


def timed_call(run, batch, device) -> Tuple[float, float]:
    """Wall and process CPU seconds of one call."""
    _synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    with torch.no_grad():
        run(batch)
    _synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu_start


def memory_pass(run, batches, device) -> float:
    """Peak memory growth (MB) over one untimed pass."""
    gc.collect()
    with PeakMemory(device) as peak:
        with torch.no_grad():
            for batch in batches:
                run(batch)
    return peak.growth


def main() -> None:
    parser = benchmark_parser(__doc__, threads=[2])
    parser.add_argument("--conll", default=os.environ.get("NER_ELMO_CONLL_DEV"), help="CoNLL file (env NER_ELMO_CONLL_DEV)")
    parser.add_argument("--sentences", type=int, default=96, help="first N sentences")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--options", help="ELMo options.json (default: the 2x4096_512_2048cnn_2xhighway architecture)")
    parser.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "ner_elmo_benchmarks"), help="where generated weights are kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="passes; each interleaves the kinds batch by batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, help="ours only: bfloat16 or float16 matrix products (GPU), int8 per-step products (CPU)")
    parser.add_argument("--sort-by-length", action="store_true", help="batch sentences of similar length together (as allennlp's bucket sampler does)")
    parser.add_argument("--no-stock", action="store_true", help="time ours only")
    args = parser.parse_args()
    if not args.conll or not Path(args.conll).exists():
        sys.exit(f"CoNLL file not found: {args.conll!r} (pass --conll or set NER_ELMO_CONLL_DEV)")
    for run in each_thread_count(args):
        measure(run)


def measure(args: argparse.Namespace) -> None:
    """Every kind timed, then the memory and the physical limit, with `args.threads` threads."""
    device = torch.device(args.device)
    options = read_options(args.options) if args.options else full_size_elmo_options()
    options_path, weight_path = cached_random_elmo(options, Path(args.cache_dir), args.seed)

    sentences = conll_sentences(args.conll, args.sentences)
    if args.sort_by_length:
        sentences.sort(key=len)
    tokens = sum(len(s) for s in sentences)
    positions = tokens + 2 * len(sentences)
    batches = [
        batch_to_char_ids(sentences[i : i + args.batch_size]).to(device)
        for i in range(0, len(sentences), args.batch_size)
    ]
    print(
        f"{len(sentences)} sentences, {tokens} tokens ({tokens / len(sentences):.1f} per sentence, "
        f"longest {max(len(s) for s in sentences)}), batches of {args.batch_size}"
        f"{' sorted by length' if args.sort_by_length else ' in file order'}, "
        f"{args.threads} threads, device {device}"
    )

    # Memory of each model: RSS (or CUDA allocation) growth over loading it and running one
    # batch (which builds any packed weights and allocator pools).
    loaded: Dict[str, float] = {}
    runs: Dict[str, Callable] = {}
    if not args.no_stock:
        from allennlp.modules.elmo import _ElmoBiLm  # before measuring: importing allennlp takes memory too
    gc.collect()
    with PeakMemory(device) as load:
        ours = FastElmoBiLm(options_path, weight_path, dtype=args.dtype).to(device).eval()
        with torch.no_grad():
            actual = ours(batches[0])
    loaded["ours"] = _memory_mb(device) - load.start
    if not args.no_stock:
        with PeakMemory(device) as load:
            stock = _ElmoBiLm(options_path, weight_path).to(device).eval()

            def run_stock(batch):
                # Stock ElmoLstm carries its state from batch to batch: start each from zeros.
                stock._elmo_lstm.reset_states()
                return stock(batch)

            with torch.no_grad():
                expected = run_stock(batches[0])
        loaded["stock"] = _memory_mb(device) - load.start
        runs["stock"] = run_stock
        difference = max(
            (e - a).abs().max().item() for e, a in zip(expected["activations"], actual["activations"])
        )
        print(f"max |stock - ours| over every layer of batch 0: {difference:.2e}")
    del actual

    # One module, two character caches: "cold" starts every pass empty, "warm" holds every word.
    warm_cache = ours.char_cache
    cold_cache = CharacterEmbeddingCache(warm_cache.capacity)
    with torch.no_grad():
        for batch in batches:
            ours(batch)

    def with_cache(cache):
        def run(batch):
            ours.char_cache = cache
            return ours(batch)

        return run

    runs["ours cold"] = with_cache(cold_cache)
    runs["ours warm"] = with_cache(warm_cache)

    # Interleaved batch by batch, so that every kind sees the same share of the machine.
    wall: Dict[str, List[float]] = {name: [] for name in runs}
    cpu: Dict[str, List[float]] = {name: [] for name in runs}
    for repeat in range(args.repeats):
        cold_cache.clear()
        totals = {name: [0.0, 0.0] for name in runs}
        for batch in batches:
            for name, run in runs.items():
                seconds, cpu_seconds = timed_call(run, batch, device)
                totals[name][0] += seconds
                totals[name][1] += cpu_seconds
        for name, (seconds, cpu_seconds) in totals.items():
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
        print(f"pass {repeat + 1}: " + ", ".join(f"{name} {wall[name][-1]:.2f}s" for name in runs), flush=True)

    working = {}
    if "stock" in runs:
        working["stock"] = memory_pass(runs["stock"], batches, device)
    cold_cache.clear()
    working["ours"] = memory_pass(runs["ours cold"], batches, device)
    ours.char_cache = warm_cache

    rate = matmul_rate(device)
    flops = flops_per_position(options)
    per_token = {name: value * positions / tokens for name, value in flops.items()}
    cold_flops = sum(per_token.values())
    warm_flops = per_token["lstm_input"] + per_token["lstm_recurrent"]

    print()
    print(
        f"{'':<11}{'tokens/s':>10}{'speed-up':>10}{'tokens/CPU s':>14}{'speed-up':>10}"
        f"   wall s of each pass"
    )
    for name in runs:
        speed = tokens / statistics.median(wall[name])
        cpu_speed = tokens / statistics.median(cpu[name])
        if "stock" in runs:
            # Ratios within each pass (same share of the machine), then their median.
            speed_up = f"{statistics.median(s / o for s, o in zip(wall['stock'], wall[name])):.1f}x"
            cpu_speed_up = f"{statistics.median(s / o for s, o in zip(cpu['stock'], cpu[name])):.1f}x"
        else:
            speed_up = cpu_speed_up = "-"
        listed = " ".join(f"{t:.2f}" for t in wall[name])
        print(f"{name:<11}{speed:>10.1f}{speed_up:>10}{cpu_speed:>14.1f}{cpu_speed_up:>10}   {listed}")
    print()
    kind = "CUDA allocation" if device.type == "cuda" else "RSS"
    for name in loaded:
        print(
            f"{name}: {kind} {loaded[name]:.0f} MB for the model (loaded, one batch run), "
            f"then peak growth {working.get(name, 0.0):.0f} MB over a pass"
        )
    print(f"process peak RSS (ru_maxrss): {peak_rss_mib():.0f} MB")
    print()
    print(
        f"model FLOPs per token (with <S>/</S> overhead {positions / tokens:.2f} positions per token): "
        f"char CNN {per_token['char_cnn'] / 1e6:.3g}M, LSTM input products {per_token['lstm_input'] / 1e6:.3g}M, "
        f"LSTM recurrent + projection {per_token['lstm_recurrent'] / 1e6:.3g}M"
    )
    print(f"measured float32 matmul (2048^3): {rate:.0f} GFLOP/s on {args.threads} threads")
    print(
        f"physical limit at that rate: {rate * 1e9 / cold_flops:.0f} tokens/s with the CNN, "
        f"{rate * 1e9 / warm_flops:.0f} tokens/s with every word cached"
    )
    for name in runs:
        used = (warm_flops if name == "ours warm" else cold_flops) * tokens / min(wall[name]) / 1e9
        print(f"{name} (fastest pass): {used:.0f} GFLOP/s useful, {100 * used / rate:.0f}% of the matmul rate")


if __name__ == "__main__":
    main()
