"""
The torch-only bundle against its allennlp archive, side by side: the same tags (every sentence
of the CoNLL files given), start-up as whole processes, memory, and tokens per second.

    python benchmarks/bundle_runtime.py ARCHIVE BUNDLE [--onnx ONNX_BUNDLE] --corpus $CORPUS/bbc_news.txt \
        --conll $DATA/eng.testa $DATA/eng.testb

1. Parity: every sentence of each `--conll` file, pre-tokenized, through the archive's `ner`
   predictor and through the bundle: sentences whose tags differ, and the largest difference of
   their logits.
2. Cold start: `python -c` processes that import, load and tag one text (raw or pre-tokenized),
   `--runs` each, alternating; wall time to the first tagged text (min and median), resident
   memory after loading and after tagging the `--documents` texts.
3. Tokens per second after a warm-up on the `--documents` texts of `--words` words, with
   `--threads` 1 and 2, archive and bundle alternating, tags compared; the model's FLOPs per
   token and the share of the machine's matrix-multiply rate they reach.
"""
import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

from toolbox import add_document_arguments, benchmark_parser, conll_sentences, read_documents, rss_mib

# The child imports nothing a user's process would not: `rss_mib` comes as source, not imported.
_CHILD = inspect.getsource(rss_mib) + r"""
import os, sys, time, json
started = float(sys.argv[4])
if sys.argv[6] != "onnx":  # onnxruntime reads OMP_NUM_THREADS; the ONNX runtime never imports torch
    import torch
    torch.set_num_threads(int(sys.argv[5]))
import ner_elmo
tagger = ner_elmo.load(sys.argv[1])
texts = json.loads(open(sys.argv[3]).read())
first = texts[0] if sys.argv[2] == "text" else texts[0].split()
tagger(first)
ready = time.time() - started
loaded = rss_mib()
tagger.tag_batch(texts if sys.argv[2] == "text" else [text.split() for text in texts])
heavy = [m for m in ("allennlp", "spacy", "transformers", "torchvision", "torch") if m in sys.modules]
print(json.dumps({"ready_s": ready, "rss_loaded_mib": loaded, "rss_after_mib": rss_mib(), "imported": heavy}))
"""


def parity(archive_tagger, bundle_tagger, files: List[Path], onnx_tagger=None) -> None:
    import numpy

    for path in files:
        sentences = conll_sentences(path)
        inputs = [{"tokens": words} for words in sentences]
        want = archive_tagger.predict_batch_json(inputs)
        have = bundle_tagger.predict_batch_json(inputs)
        differ = sum(a["tags"] != b["tags"] for a, b in zip(want, have))
        tokens = sum(len(words) for words in sentences)
        predictor = archive_tagger.predictor
        worst = 0.0
        parsed = [bundle_tagger.parse(value) for value in inputs]
        pieces = [piece for request in parsed for piece in request.sentences]
        for begin in range(0, len(pieces), 256):
            chunk = pieces[begin : begin + 256]
            logits, mask = bundle_tagger.logits(chunk)
            outputs = predictor.predict_batch_instance([predictor._instance(piece) for piece in chunk])
            for row, output in enumerate(outputs):
                length = int(mask[row].sum())
                difference = numpy.abs(numpy.asarray(logits[row, :length]) - numpy.asarray(output["logits"][:length])).max()
                worst = max(worst, float(difference))
        print(
            f"parity {path.name}: {len(sentences)} sentences, {tokens} tokens; sentences whose tags differ: "
            f"{differ}; largest logit difference {worst:.2e}"
        )
        if onnx_tagger is not None:
            by_onnx = onnx_tagger.predict_batch_json(inputs)
            differ = sum(a["tags"] != b["tags"] for a, b in zip(have, by_onnx))
            scores = [abs(a["score"] - b["score"]) for x, y in zip(have, by_onnx) for a, b in zip(x["entities"], y["entities"])]
            worst = 0.0
            for begin in range(0, len(pieces), 256):
                chunk = pieces[begin : begin + 256]
                (torch_logits, mask), (onnx_logits, _) = bundle_tagger.logits(chunk), onnx_tagger.logits(chunk)
                worst = max(worst, float(numpy.abs(torch_logits.numpy() - onnx_logits)[mask.numpy()].max()))
            print(
                f"parity {path.name}, ONNX against the torch bundle: sentences whose tags differ: {differ}; "
                f"largest logit difference {worst:.2e}; largest entity score difference {max(scores):.1e}"
            )


def cold_start(args: argparse.Namespace, texts_file: Path) -> None:
    results: Dict[str, List[dict]] = {}
    modes = [("archive", "text"), ("bundle", "text"), ("bundle", "tokens")]
    if args.onnx:
        modes += [("onnx", "text"), ("onnx", "tokens")]
    models = {"archive": args.archive, "bundle": args.bundle, "onnx": args.onnx}
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(args.runs):
        for kind, input_kind in modes:
            command = [sys.executable, "-c", _CHILD, models[kind], input_kind, str(texts_file), str(time.time()), "1", kind]
            completed = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)
            results.setdefault(f"{kind} {input_kind}", []).append(json.loads(completed.stdout.strip().splitlines()[-1]))
    print(f"cold start, {args.runs} runs each (python -c: import, load, tag the first text; one thread):")
    print("| model | input | first text, min s | median s | RSS loaded MiB | RSS after texts MiB | heavy modules imported |")
    print("|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        ready = [run["ready_s"] for run in runs]
        kind, input_kind = name.split()
        print(
            f"| {kind} | {input_kind} | {min(ready):.2f} | {statistics.median(ready):.2f} | "
            f"{statistics.median(run['rss_loaded_mib'] for run in runs):.0f} | "
            f"{statistics.median(run['rss_after_mib'] for run in runs):.0f} | {', '.join(runs[0]['imported']) or 'none'} |"
        )


def throughput(args: argparse.Namespace, archive_tagger, bundle_tagger, texts: List[str]) -> None:
    import ner_elmo
    import torch

    inputs = [{"text": text} for text in texts]
    for threads in args.threads:
        torch.set_num_threads(threads)
        taggers = [("archive", archive_tagger), ("bundle", bundle_tagger)]
        if args.onnx:  # onnxruntime's threads are the session's: one tagger per count
            taggers.append(("onnx", ner_elmo.load(args.onnx, threads=threads)))
        rates: Dict[str, List[float]] = {name: [] for name, _ in taggers}
        outputs = {}
        for name, tagger in taggers:
            tagger.predict_batch_json(inputs[:64], 64)  # warm-up
        for _ in range(args.rounds):
            for name, tagger in taggers:
                started = time.perf_counter()
                outputs[name] = tagger.predict_batch_json(inputs, 64)
                elapsed = time.perf_counter() - started
                rates[name].append(sum(len(output["tokens"]) for output in outputs[name]) / elapsed)
        same = all(
            a["tags"] == b["tags"] for name in outputs for a, b in zip(outputs["archive"], outputs[name])
        )
        archive_rate, bundle_rate = statistics.median(rates["archive"]), statistics.median(rates["bundle"])
        onnx_part = ""
        if args.onnx:
            onnx_rate = statistics.median(rates["onnx"])
            onnx_part = f", ONNX {onnx_rate:,.0f} ({onnx_rate / archive_rate:.2f}x)"
        print(
            f"tokens/s, {threads} thread(s), {len(texts)} texts, median of {args.rounds}: archive {archive_rate:,.0f}, "
            f"bundle {bundle_rate:,.0f} ({bundle_rate / archive_rate:.2f}x){onnx_part}; same tags: {same}"
        )
        flops = flops_per_token(bundle_tagger)
        rate = matmul_rate(threads)
        print(
            f"  the network's FLOPs per token {flops:,.0f}: at the bundle's rate {flops * bundle_rate / 1e9:.2f} "
            f"GFLOP/s, {100 * flops * bundle_rate / rate:.1f}% of this machine's {rate / 1e9:.0f} GFLOP/s "
            f"(a 512x512 float32 matrix product, {threads} thread(s))"
        )


def flops_per_token(tagger, mean_word_chars: float = 6.0) -> float:
    """Multiply-adds x 2 of the network for one token (the char CNN at `mean_word_chars`)."""
    spec = tagger._network.spec
    flops = 0.0
    for item in spec["inputs"]:
        embedder = item["embedder"]
        if embedder["type"] == "char_cnn":
            for width in embedder["ngram_filter_sizes"]:
                positions = max(item.get("min_padding_length", 0), mean_word_chars) - width + 1
                flops += 2 * positions * width * embedder["embedding_dim"] * embedder["num_filters"]
    encoder = spec["encoder"]
    if encoder["type"] in ("fused_bilstm", "residual_bilstm"):
        hidden, size = encoder["hidden_size"], encoder["input_size"]
        layers = encoder.get("num_layers", 2 if encoder["type"] == "residual_bilstm" else 1)
        for layer in range(layers):
            inputs = size if layer == 0 else 2 * hidden
            flops += 2 * 2 * 4 * hidden * (inputs + hidden)  # two directions, four gates
    flops += 2 * spec["encoder_output_dim"] * spec["num_tags"]
    flops += 2 * spec["num_tags"] ** 2  # Viterbi
    return flops


def matmul_rate(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    for _ in range(5):
        a @ b
    started, repeats = time.perf_counter(), 50
    for _ in range(repeats):
        a @ b
    return 2 * 512**3 * repeats / (time.perf_counter() - started)


def main() -> None:
    parser = benchmark_parser(__doc__, threads=[1, 2], threads_help="torch threads of the throughput pass")
    parser.add_argument("archive")
    parser.add_argument("bundle")
    parser.add_argument("--onnx", help="the same model's bundle exported with --onnx, timed beside the others")
    add_document_arguments(parser, words=100)
    parser.add_argument("--conll", type=Path, nargs="*", default=[], help="CoNLL files for the parity check")
    parser.add_argument("--runs", type=int, default=3, help="cold starts of each kind")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the texts per thread count")
    parser.add_argument("--skip", nargs="*", default=[], choices=["parity", "cold", "throughput"])
    args = parser.parse_args()
    texts, _ = read_documents(args.corpus, args.documents, args.words)
    texts_file = Path("/tmp") / f"bundle_runtime_texts_{args.documents}x{args.words}.json"
    texts_file.write_text(json.dumps(texts))
    if "cold" not in args.skip:
        cold_start(args, texts_file)
    if "parity" in args.skip and "throughput" in args.skip:
        return
    import torch

    torch.set_num_threads(1)
    import ner_elmo
    from ner_elmo.runtime.archive_tagger import ArchiveTagger

    archive_tagger, bundle_tagger = ArchiveTagger(args.archive), ner_elmo.load(args.bundle)
    print(f"in-process RSS with both loaded: {rss_mib():.0f} MiB")
    if "parity" not in args.skip:
        parity(archive_tagger, bundle_tagger, args.conll, ner_elmo.load(args.onnx) if args.onnx else None)
    if "throughput" not in args.skip:
        throughput(args, archive_tagger, bundle_tagger, texts)


if __name__ == "__main__":
    main()
