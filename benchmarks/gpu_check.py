"""
The GPU code paths against the CPU reference, and the fast biLM's speed on the GPU: one prepared
check for a machine with CUDA, torch, numpy and h5py (allennlp is not needed).

Compared on the device against float32 on the CPU:

* the fast biLM in float32 (on CUDA both directions run in one product per step, a path the
  CPU never takes), and with bfloat16 / float16 products (against their documented tolerances);
* the character cache (a warm call returns what the cold one computed; no cache within 1e-5);
* the activation cache (a hit returns the stored numbers; equal to the biLM's own output);
* batched Viterbi (the same paths; scores within 1e-4).

Then it times the biLM on the device in float32 and bfloat16 (and on the CPU for scale) on a
full-size 2x4096_512_2048cnn_2xhighway ELMo with seeded random weights that it writes itself.

    python benchmarks/gpu_check.py                   # or: make gpu-check
    python benchmarks/gpu_check.py --device cpu --quick   # the script itself, on any machine

From a checkout where the package is not installed (a bare GPU machine), put the checkout on
the path: `PYTHONPATH=. python benchmarks/gpu_check.py` (what `make gpu-check` runs).

Prints a table and exits 1 if a check fails; with `--json PATH` (or `$OUT` set) also writes the
results as JSON.
"""
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import torch

from ner_elmo.modules.elmo import FastElmoBiLm, batch_to_char_ids
from ner_elmo.modules.elmo.hdf5_layout import read_options
from ner_elmo.modules.elmo_cache import ElmoActivationCache, MemoryActivationStore, module_fingerprint
from ner_elmo.modules.viterbi import viterbi_decode_batch
from toolbox import FIXTURES, benchmark_parser, conll_sentences, full_size_elmo_options, random_elmo_files

FIXTURE_ELMO = (str(FIXTURES / "elmo" / "options.json"), str(FIXTURES / "elmo" / "lm_weights.hdf5"))
#: Largest |difference| from the CPU's float32 activations, per precision (the fixture's values
#: are of order 1; the documented reduced-precision tolerances, with margin).
TOLERANCES = {"float32": 1e-5, "bfloat16": 2e-2, "float16": 2e-3}


def conll_like_sentences(count: int, seed: int) -> List[List[str]]:
    """Sentences of CoNLL-like lengths (1 to 40 tokens, mean about 14) from the fixture corpus."""
    words = [word for sentence in conll_sentences(FIXTURES / "conll" / "train.iob1.txt") for word in sentence]
    rng = random.Random(seed)
    return [[rng.choice(words) for _ in range(min(40, max(1, int(rng.expovariate(1 / 14)))))] for _ in range(count)]


def _max_difference(expected: Dict, actual: Dict) -> float:
    return max((e - a.to(e.device)).abs().max().item() for e, a in zip(expected["activations"], actual["activations"]))


def check_bilm(device: str, dtype: str, sentences: List[List[str]]) -> Dict:
    char_ids = batch_to_char_ids(sentences)
    with torch.no_grad():
        reference = FastElmoBiLm(*FIXTURE_ELMO)(char_ids)
        bilm = FastElmoBiLm(*FIXTURE_ELMO, dtype=None if dtype == "float32" else dtype).to(device)
        actual = bilm(char_ids.to(device))
    difference = _max_difference(reference, actual)
    masks_equal = torch.equal(reference["mask"], actual["mask"].cpu())
    return {"check": f"biLM {dtype}", "value": difference, "limit": TOLERANCES[dtype],
            "ok": masks_equal and difference <= TOLERANCES[dtype]}


def check_char_cache(device: str, sentences: List[List[str]]) -> Dict:
    char_ids = batch_to_char_ids(sentences).to(device)
    with torch.no_grad():
        cached = FastElmoBiLm(*FIXTURE_ELMO).to(device)
        cold = cached(char_ids)
        warm = cached(char_ids)
        uncached = FastElmoBiLm(*FIXTURE_ELMO, char_cache_size=0).to(device)(char_ids)
    hit_exact = all(torch.equal(a, b) for a, b in zip(cold["activations"], warm["activations"]))
    difference = _max_difference(uncached, warm)
    return {"check": "character cache", "value": difference, "limit": 1e-5,
            "ok": hit_exact and cached.char_cache.hits > 0 and difference <= 1e-5}


def check_activation_cache(device: str, sentences: List[List[str]]) -> Dict:
    char_ids = batch_to_char_ids(sentences).to(device)
    bilm = FastElmoBiLm(*FIXTURE_ELMO).to(device).eval()
    cache = ElmoActivationCache(MemoryActivationStore(2**28), bilm.get_output_dim(), layers=[0, 1, 2])
    fingerprint = module_fingerprint(bilm)
    with torch.no_grad():
        direct = bilm(char_ids)
        miss = cache.activations(char_ids, bilm, fingerprint)
        hit = cache.activations(char_ids, bilm, fingerprint)
    on_device = all(a.device.type == torch.device(device).type for a in hit["activations"])
    hit_exact = all(torch.equal(a, b) for a, b in zip(miss["activations"], hit["activations"]))
    difference = _max_difference(direct, hit)
    return {"check": "activation cache", "value": difference, "limit": 1e-5,
            "ok": on_device and hit_exact and cache.hits == len(sentences) and difference <= 1e-5}


def check_viterbi(device: str, seed: int = 0) -> Dict:
    generator = torch.Generator().manual_seed(seed)
    batch, time_steps, tags = 64, 40, 17
    logits = torch.randn(batch, time_steps, tags, generator=generator)
    lengths = torch.randint(1, time_steps + 1, (batch,), generator=generator)
    mask = torch.arange(time_steps).unsqueeze(0) < lengths.unsqueeze(1)
    transitions, start, end = (torch.randn(*shape, generator=generator) for shape in ((tags, tags), (tags,), (tags,)))
    cpu_paths, cpu_scores = viterbi_decode_batch(logits, mask, transitions, start, end)
    paths, scores = viterbi_decode_batch(*(t.to(device) for t in (logits, mask, transitions, start, end)))
    difference = (cpu_scores - scores.cpu()).abs().max().item()
    return {"check": "batched Viterbi", "value": difference, "limit": 1e-4,
            "ok": torch.equal(cpu_paths, paths.cpu()) and difference <= 1e-4}


def time_bilm(options_file: str, weight_file: str, device: str, dtype: str, sentences: List[List[str]],
              batch_size: int, repeats: int) -> Dict:
    """Tokens per second of the fast biLM (character cache off: every word's CNN runs)."""
    bilm = FastElmoBiLm(options_file, weight_file, char_cache_size=0,
                        dtype=None if dtype == "float32" else dtype).to(device).eval()
    batches = [batch_to_char_ids(sentences[i:i + batch_size]).to(device) for i in range(0, len(sentences), batch_size)]
    tokens = sum(len(s) for s in sentences)

    def synchronize():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.no_grad():
        bilm(batches[0])  # warm-up: kernels, packed weights
        synchronize()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for char_ids in batches:
                bilm(char_ids)
            synchronize()
            best = min(best, time.perf_counter() - start)
    return {"device": device, "dtype": dtype, "batch_size": batch_size, "tokens": tokens,
            "seconds": round(best, 3), "tokens_per_second": round(tokens / best, 1)}


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--device", default="cuda", help="the device checked against the CPU (default cuda)")
    parser.add_argument("--quick", action="store_true", help="fixture ELMo only, no full-size timing")
    parser.add_argument("--sentences", type=int, default=2048, help="sentences timed")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results here (default: $OUT/gpu_check.json)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available here: run with --device cpu to check the script itself", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(f"torch {torch.__version__}, device {args.device} ({name})")

    sentences = conll_like_sentences(24, seed=1)
    checks = [check_bilm(args.device, "float32", sentences)]
    dtypes = ["bfloat16", "float16"] if args.device.startswith("cuda") else []
    checks += [check_bilm(args.device, dtype, sentences) for dtype in dtypes]
    checks += [check_char_cache(args.device, sentences), check_activation_cache(args.device, sentences),
               check_viterbi(args.device)]
    print("\n| check | max abs difference from the CPU | limit | ok |\n|---|---|---|---|")
    for check in checks:
        print(f"| {check['check']} | {check['value']:.2e} | {check['limit']:.0e} | {'yes' if check['ok'] else 'NO'} |")

    timings = []
    if not args.quick:
        timed = conll_like_sentences(args.sentences, seed=2)
        with tempfile.TemporaryDirectory() as tmp:
            options_file, weight_file = random_elmo_files(full_size_elmo_options(), tmp, seed=0)
            assert read_options(options_file)["lstm"]["dim"] == 4096
            for dtype in ["float32"] + dtypes[:1]:
                timings.append(time_bilm(options_file, weight_file, args.device, dtype, timed, args.batch_size,
                                         args.repeats))
            # The CPU for scale, on a slice (it is much slower).
            cpu_slice = timed[: max(args.batch_size, len(timed) // 16)]
            timings.append(time_bilm(options_file, weight_file, "cpu", "float32", cpu_slice, args.batch_size, 1))
        print("\n| device | dtype | batch size | tokens | seconds | tokens/s |\n|---|---|---|---|---|---|")
        for timing in timings:
            print(f"| {timing['device']} | {timing['dtype']} | {timing['batch_size']} | {timing['tokens']} | "
                  f"{timing['seconds']} | {timing['tokens_per_second']:,} |")

    target = args.json or (os.path.join(os.environ["OUT"], "gpu_check.json") if os.environ.get("OUT") else None)
    if target:
        Path(target).write_text(json.dumps({"device": name, "torch": torch.__version__, "checks": checks,
                                            "timings": timings}, indent=2))
    return 0 if all(check["ok"] for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
