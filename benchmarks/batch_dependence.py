"""
How much a sentence's fast-biLM activations depend on the rest of its batch, under each CPU
kernel kind: the numbers behind `FastElmoBiLm`'s `BATCH_TOLERANCE` and the
reliability table of docs/reliability.md.

Each sentence of a batch is run again alone (and the batch again in reverse order); the script
prints, per layer, the largest |difference| and the largest |activation|, for each CPU
capability it is asked to emulate (`ATEN_CPU_CAPABILITY`, `DNNL_MAX_CPU_ISA`,
`MKL_ENABLE_INSTRUCTIONS`, set before torch loads, so each runs in its own process):

    python benchmarks/batch_dependence.py --options fixtures/elmo/options.json \
        --weights fixtures/elmo/lm_weights.hdf5 --conll fixtures/conll/train.iob1.txt \
        --capabilities native avx2 default --threads 1 2

Needs only torch, numpy and h5py (no allennlp).
"""
import argparse
import json
import os
import random
import subprocess
import sys
from typing import Dict, List

from toolbox import benchmark_parser, conll_sentences

#: What each emulated capability sets; "native" leaves the CPU's own kernels.
CAPABILITIES: Dict[str, Dict[str, str]] = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "DNNL_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}


def read_sentences(path: str, count: int, seed: int) -> List[List[str]]:
    """`count` pieces of 1 to 40 consecutive tokens of a CoNLL file's first column."""
    tokens = [token for sentence in conll_sentences(path) for token in sentence]
    rng = random.Random(seed)
    sentences, start = [], 0
    while len(sentences) < count:
        length = rng.randint(1, 40)
        sentences.append([tokens[(start + k) % len(tokens)] for k in range(length)])
        start += length
    return sentences


def measure(args) -> Dict[str, object]:
    import torch

    from ner_elmo.modules.elmo import FastElmoBiLm
    from ner_elmo.modules.elmo.char_ids import batch_to_char_ids

    torch.set_num_threads(args.threads)
    sentences = read_sentences(args.conll, args.sentences, args.seed)

    bilm = FastElmoBiLm(args.options, args.weights).eval()

    def run(batch):
        bilm.clear_caches()  # no character embedding carried between the runs compared
        with torch.no_grad():
            return [layer.detach() for layer in bilm(batch_to_char_ids(batch))["activations"]]

    together = run(sentences)
    reversed_batch = run(sentences[::-1])
    layers = len(together)
    worst = [0.0] * layers
    differing = 0
    for row, sentence in enumerate(sentences):
        alone = run([sentence])
        positions = len(sentence) + 2  # with <S> and </S>
        other_row = len(sentences) - 1 - row
        for k in range(layers):
            for other in (alone[k][0, :positions], reversed_batch[k][other_row, :positions]):
                difference = (together[k][row, :positions] - other).abs().max().item()
                worst[k] = max(worst[k], difference)
                differing += difference > 0
    scale = [layer.abs().max().item() for layer in together]
    return {
        "threads": args.threads,
        "max_abs_difference": worst,
        "max_abs_activation": scale,
        "max_relative_difference": max(w / max(s, 1e-30) for w, s in zip(worst, scale)),
        "comparisons_not_bit_identical": differing,
        "comparisons": 2 * layers * len(sentences),
    }


def main(argv=None) -> None:
    parser = benchmark_parser(__doc__, threads=[1], threads_help="torch threads of each measuring process")
    parser.add_argument("--options", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--conll", required=True, help="CoNLL file whose tokens make the sentences")
    parser.add_argument("--sentences", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--capabilities", nargs="*", default=None, choices=sorted(CAPABILITIES))
    parser.add_argument("--measure-here", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.measure_here:
        args.threads = args.threads[0]
        print(json.dumps(measure(args)))
        return
    print("| capability | threads | max abs difference per layer | max abs activation | max relative | not bit-identical |")
    print("|---|---|---|---|---|---|")
    for capability in args.capabilities or ["native"]:
        for threads in args.threads:
            command = [sys.executable, __file__, "--measure-here", "--options", args.options, "--weights", args.weights,
                       "--conll", args.conll, "--sentences", str(args.sentences), "--seed", str(args.seed),
                       "--threads", str(threads)]
            env = {**os.environ, **CAPABILITIES[capability]}
            output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            differences = ", ".join(f"{d:.2e}" for d in result["max_abs_difference"])
            activations = ", ".join(f"{a:.2f}" for a in result["max_abs_activation"])
            print(f"| {capability} | {threads} | {differences} | {activations} | {result['max_relative_difference']:.2e} "
                  f"| {result['comparisons_not_bit_identical']} of {result['comparisons']} |", flush=True)


if __name__ == "__main__":
    main()
