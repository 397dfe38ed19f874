"""
Load test of the prediction service: starts the real `allennlp ner-serve` (`ner-elmo serve` for a
bundle directory) on 127.0.0.1 and
drives it with a bounded asyncio + httpx client (a fixed number of requests, a deadline per run).

    python benchmarks/service_load.py ARCHIVE --corpus reuters21578.txt \
        [--documents 300] [--words 500] [--concurrency 1 8 32] [--memory-requests 10000]

Prints, side by side in one run:

* the in-process `ner` predictor's tokens/s on the documents (the model loaded, batches of
  `--max-batch-size` documents), which the service is measured against;
* for each concurrency (closed loop: that many requests in flight): requests/s, tokens/s,
  p50/p95/p99 latency, the mean micro-batch size from `/metrics`, and the ratio to in-process;
* a short sentence (about 30 tokens) alone: p50/p99 latency;
* an overload run, open loop at twice the measured capacity: how many 200s and 503s, and that
  every request got exactly one answer, with its own id (none lost, none duplicated);
* the server's RSS over `--memory-requests` requests of short texts.

Documents are the corpus' paragraphs-separated documents (Reuters-21578 in ../shared has one
document per blank-line-separated block) of at least `--words` words, cut to `--words` words;
short texts are the first 25 words of other documents. The machine is shared with the client:
on 2 cores, the client's own CPU use is part of what the service's figures pay.
"""
import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import httpx
import numpy
from prometheus_client.parser import text_string_to_metric_families

from toolbox import (
    JSON_HEADERS,
    REPO,
    add_document_arguments,
    benchmark_parser,
    each_thread_count,
    free_port,
    random_elmo_files,
    read_documents,
    rss_mib,
    wait_ready,
)

def metric_totals(url: str) -> Dict[str, float]:
    text = httpx.get(url + "/metrics").text
    totals: Dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "le" not in sample.labels:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def percentiles(latencies: List[float]) -> Tuple[float, float, float]:
    if not latencies:
        return (float("nan"),) * 3  # type: ignore[return-value]
    p50, p95, p99 = numpy.percentile(numpy.array(latencies) * 1000, [50, 95, 99])
    return float(p50), float(p95), float(p99)


async def closed_loop(
    url: str, bodies: List[dict], concurrency: int, deadline: float
) -> Dict[str, object]:
    """Sends every body once, `concurrency` at a time, until done or `deadline` seconds."""
    queue: "asyncio.Queue[dict]" = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: List[float] = []
    statuses: Dict[int, int] = {}
    tokens = 0
    answered_ids: List[object] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=deadline, headers=JSON_HEADERS) as client:

        async def worker() -> None:
            nonlocal tokens
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                response = await client.post("/predict", content=json.dumps(body))
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    answer = response.json()
                    tokens += len(answer["tokens"])
                    answered_ids.append(answer["id"])

        started = time.perf_counter()
        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        done, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        elapsed = time.perf_counter() - started
    for task in done:
        task.result()  # re-raise a client error
    return {
        "elapsed": elapsed,
        "latencies": latencies,
        "statuses": statuses,
        "tokens": tokens,
        "ids": answered_ids,
        "unfinished": len(bodies) - len(latencies),
    }


async def open_loop(url: str, bodies: List[dict], rate: float, deadline: float) -> Dict[str, object]:
    """Sends the bodies at `rate` per second whatever the answers (at most 512 in flight)."""
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    results: List[Tuple[object, int, Optional[object], float, Optional[str]]] = []
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=deadline, headers=JSON_HEADERS) as client:

        async def send(body: dict) -> None:
            started = time.perf_counter()
            response = await client.post("/predict", content=json.dumps(body))
            answer = response.json()
            results.append(
                (body["id"], response.status_code, answer.get("id"), time.perf_counter() - started,
                 response.headers.get("retry-after"))
            )

        started = time.perf_counter()
        tasks = []
        for index, body in enumerate(bodies):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(body)))
        done, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        elapsed = time.perf_counter() - started
    errors = [task.exception() for task in done if task.exception() is not None]
    return {"elapsed": elapsed, "results": results, "unfinished": len(pending), "errors": errors}


def random_elmo_archive(base: str, options_file: str, directory: Path) -> str:
    """
    `base`'s tagger with an ELMo embedder added as `conll2003_elmo.jsonnet` adds it (`ner_elmo`,
    learned mix, the configs' memory cache, which the service turns off), on seeded random
    weights for `options_file`, untrained: tagging costs the same as with real weights.
    """
    import torch
    from allennlp.common import Params
    from allennlp.models import Model
    from allennlp.models.archival import archive_model

    from ner_elmo.common.safe_archive import load_archive_safely
    from ner_elmo.modules.elmo.weights_io import read_options
    from ner_elmo.service.loading import archived_config

    options = read_options(options_file)
    options_path, weight_path = random_elmo_files(options, directory, seed=1)
    config = archived_config(base)
    config["dataset_reader"]["token_indexers"]["elmo"] = {"type": "elmo_characters"}
    embedders = config["model"]["text_field_embedder"]["token_embedders"]
    for embedder in embedders.values():
        embedder.pop("pretrained_file", None)  # the base archive's weights replace GloVe
    embedders["elmo"] = {
        "type": "ner_elmo", "options_file": str(options_path), "weight_file": str(weight_path),
        "do_layer_norm": False, "dropout": 0.0, "cache": "memory",
    }
    config["model"]["encoder"]["input_size"] += 2 * options["lstm"]["projection_dim"]
    vocab = load_archive_safely(base).model.vocab
    model = Model.from_params(vocab=vocab, params=Params(json.loads(json.dumps(config["model"]))))
    (directory / "config.json").write_text(json.dumps(config))
    vocab.save_to_files(str(directory / "vocabulary"))
    torch.save(model.state_dict(), directory / "best.th")
    archive_model(str(directory))
    return str(directory / "model.tar.gz")


def in_process_throughput(args: argparse.Namespace, texts: List[str]) -> Tuple[float, int, float]:
    """(tokens/s, tokens, seconds) of the loaded `ner` predictor (or bundle tagger) on `texts`."""
    import torch

    import ner_elmo
    from ner_elmo.runtime.bundle import is_bundle

    if args.threads:
        torch.set_num_threads(args.threads)
    if is_bundle(args.archive):
        predictor = ner_elmo.load(args.archive, batch_size=args.max_batch_size)
    else:
        from ner_elmo.service.loading import load_serving_predictor

        predictor = load_serving_predictor(args.archive, batch_size=args.max_batch_size)
    predictor.predict_batch_json([{"text": text} for text in texts[: args.max_batch_size]])  # warm
    started = time.perf_counter()
    tokens = 0
    for begin in range(0, len(texts), args.max_batch_size):
        chunk = [{"text": text} for text in texts[begin : begin + args.max_batch_size]]
        tokens += sum(len(output["tokens"]) for output in predictor.predict_batch_json(chunk))
    elapsed = time.perf_counter() - started
    return tokens / elapsed, tokens, elapsed


def main() -> None:
    parser = benchmark_parser(__doc__, threads=None, threads_help="torch threads of the server and of the in-process predictor",
                              none_means="the server's and torch's own")
    parser.add_argument("archive", help="a model archive or a bundle directory")
    add_document_arguments(parser)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--short-requests", type=int, default=200, help="lone short sentences")
    parser.add_argument("--memory-requests", type=int, default=10000)
    parser.add_argument("--memory-concurrency", type=int, default=32)
    parser.add_argument("--overload-seconds", type=float, default=20.0)
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--queue-size", type=int, default=64)
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument(
        "--random-elmo",
        metavar="OPTIONS",
        help="serve ARCHIVE's tagger with an ELMo of these options (seeded random weights) added",
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ner_elmo_service_load"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    if args.random_elmo:
        args.archive = random_elmo_archive(args.archive, args.random_elmo, args.workdir / "elmo_tagger")
        print(f"ELMo tagger archive: {args.archive}", flush=True)

    documents, short_texts = read_documents(
        args.corpus, args.documents, args.words, max(args.memory_requests, args.short_requests)
    )
    for run in each_thread_count(args, set_torch=False):  # in_process_throughput sets torch's
        measure(run, documents, short_texts)


def measure(args: argparse.Namespace, documents: List[str], short_texts: List[str]) -> None:
    """In-process, then the server, with `args.threads` torch threads (None: their defaults)."""
    # The in-process figure first, alone on the machine (before the server starts).
    in_process = None
    if not args.skip_in_process:
        rate, tokens, elapsed = in_process_throughput(args, documents)
        in_process = rate
        print(f"in-process predictor: {tokens} tokens of {len(documents)} documents in {elapsed:.1f} s: "
              f"{rate:,.0f} tokens/s", flush=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    from ner_elmo.runtime.bundle import is_bundle

    # A bundle is served by the torch-only command, an archive by allennlp's.
    serve = ["ner_elmo", "serve"] if is_bundle(args.archive) else ["allennlp", "ner-serve"]
    command = [
        sys.executable, "-m", *serve, args.archive, "--port", str(port),
        "--max-batch-size", str(args.max_batch_size), "--max-wait-ms", str(args.max_wait_ms),
        "--queue-size", str(args.queue_size), "--log-level", "warning",
    ] + (["--threads", str(args.threads)] if args.threads else [])
    print("server:", " ".join(command[1:]), flush=True)
    log = open(os.devnull, "w")
    server = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        run_benchmark(args, url, server, documents, short_texts, in_process)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            print(f"server stopped with exit code {server.wait(60)} after SIGTERM")
        except subprocess.TimeoutExpired:
            server.kill()


def run_benchmark(args, url: str, server: subprocess.Popen, documents: List[str], short_texts: List[str],
                  in_process: Optional[float]) -> None:
    started = time.perf_counter()
    wait_ready(url, server)
    print(f"server ready {time.perf_counter() - started:.1f} s after its start; RSS {rss_mib(server.pid):.0f} MiB", flush=True)

    print()
    print("| concurrency | requests | requests/s | tokens/s | p50 ms | p95 ms | p99 ms | mean batch | vs in-process |")
    print("|---|---|---|---|---|---|---|---|---|")
    capacity = None
    for concurrency in args.concurrency:
        bodies = [{"id": index, "text": text} for index, text in enumerate(documents)]
        before = metric_totals(url)
        result = asyncio.run(closed_loop(url, bodies, concurrency, args.deadline))
        after = metric_totals(url)
        batches = after["ner_batch_size_count"] - before["ner_batch_size_count"]
        mean_batch = (after["ner_batch_size_sum"] - before["ner_batch_size_sum"]) / max(batches, 1)
        p50, p95, p99 = percentiles(result["latencies"])
        rate = len(result["latencies"]) / result["elapsed"]
        tokens_rate = result["tokens"] / result["elapsed"]
        ratio = f"{tokens_rate / in_process:.0%}" if in_process else "-"
        assert len(set(result["ids"])) == len(result["ids"]), "an answer came twice"
        print(f"| {concurrency} | {len(result['latencies'])} of {len(bodies)} (statuses {result['statuses']}) | {rate:.1f} | {tokens_rate:,.0f} | {p50:.0f} | {p95:.0f} | {p99:.0f} | {mean_batch:.1f} | {ratio} |", flush=True)
        capacity = rate

    # A ~30-token sentence alone.
    bodies = [{"id": index, "text": text} for index, text in enumerate(short_texts[: args.short_requests])]
    result = asyncio.run(closed_loop(url, bodies, 1, args.deadline))
    p50, p95, p99 = percentiles(result["latencies"])
    print(f"\na 25-word sentence alone ({result['tokens'] / len(result['latencies']):.1f} tokens on average), "
          f"{len(result['latencies'])} requests one at a time: p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms", flush=True)

    # Overload: open loop at twice the capacity measured at the highest concurrency.
    if capacity and args.overload_seconds > 0:
        rate = 2 * capacity
        count = int(rate * args.overload_seconds)
        bodies = [{"id": f"overload-{index}", "text": documents[index % len(documents)]} for index in range(count)]
        before = metric_totals(url)
        result = asyncio.run(open_loop(url, bodies, rate, args.deadline))
        after = metric_totals(url)
        answers = result["results"]
        statuses: Dict[int, int] = {}
        for _, status, _, _, _ in answers:
            statuses[status] = statuses.get(status, 0) + 1
        sent_ids = [body["id"] for body in bodies]
        answered = [request_id for request_id, status, _, _, _ in answers]
        echoed_ok = all(answer_id == request_id for request_id, status, answer_id, _, _ in answers if status == 200)
        retry_after = {after_header for _, status, _, _, after_header in answers if status == 503}
        ok_latencies = [latency for _, status, _, latency, _ in answers if status == 200]
        p50, p95, p99 = percentiles(ok_latencies)
        print(
            f"\noverload: {count} requests at {rate:.1f}/s (2x capacity) for {args.overload_seconds:.0f} s: "
            f"statuses {statuses}; answered {len(answered)} of {len(sent_ids)}, distinct {len(set(answered))}, "
            f"lost {len(set(sent_ids) - set(answered))}, client errors {len(result['errors'])}, unfinished {result['unfinished']}; "
            f"every 200 carries its own id: {echoed_ok}; Retry-After {sorted(retry_after)}; "
            f"accepted requests' latency p50/p95/p99 {p50:.0f}/{p95:.0f}/{p99:.0f} ms; "
            f"server counted {after.get('ner_errors_total', 0) - before.get('ner_errors_total', 0):.0f} errors",
            flush=True,
        )

    # Memory (and latency) over many requests of short texts.
    if args.memory_requests:
        samples = [(0, rss_mib(server.pid))]
        step = max(args.memory_requests // 10, 1)
        tagged = 0
        latencies: List[float] = []
        elapsed = 0.0
        for begin in range(0, args.memory_requests, step):
            bodies = [{"id": index, "text": short_texts[index]} for index in range(begin, min(begin + step, args.memory_requests))]
            result = asyncio.run(closed_loop(url, bodies, args.memory_concurrency, args.deadline))
            assert result["statuses"] == {200: len(bodies)}, result["statuses"]
            tagged += len(bodies)
            latencies.extend(result["latencies"])
            elapsed += result["elapsed"]
            samples.append((tagged, rss_mib(server.pid)))
        p50, p95, p99 = percentiles(latencies)
        print(f"\n{tagged} short requests at concurrency {args.memory_concurrency}: {tagged / elapsed:.0f} requests/s, "
              f"p50/p95/p99 {p50:.0f}/{p95:.0f}/{p99:.0f} ms; server RSS: "
              + ", ".join(f"{count}: {rss:.0f} MiB" for count, rss in samples), flush=True)

if __name__ == "__main__":
    main()
