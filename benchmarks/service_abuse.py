"""
Hostile requests against the prediction service: starts the real `allennlp ner-serve` on
127.0.0.1 and sends, bounded in count and time, each kind of abuse the service must survive,
while a prober asks `/healthz` every 20 ms and a client sends normal traffic (100-word texts,
two in flight).

    python benchmarks/service_abuse.py [--archive model.tar.gz] [--corpus bbc_news.txt] [--threads 2]

Without `--archive`, the `conll2003_glove_char` config is trained for one epoch on the bundled
fixtures (the GloVe + char-CNN + BiLSTM + CRF architecture; speed does not depend on the
weights). For each case it prints the answer's code, its time, and `/healthz` latency (p50, p99,
max) while it ran; then normal traffic's throughput without and during the abuse; then how long
SIGTERM takes to stop the service with a half-sent body open. Goals: every request answered
within its deadline with the right code; `/healthz` p99 under 100 ms throughout; normal
throughput during the abuse at least 80% of without.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import httpx
import numpy

from toolbox import FIXTURES, JSON_HEADERS, REPO, benchmark_parser, each_thread_count, free_port, wait_ready

TRAIN_ENV = {
    "NER_ELMO_CONLL_TRAIN": str(FIXTURES / "conll/train.iob1.txt"),
    "NER_ELMO_CONLL_DEV": str(FIXTURES / "conll/dev.iob1.txt"),
    "NER_ELMO_CONLL_TEST": str(FIXTURES / "conll/dev.iob1.txt"),
    "NER_ELMO_GLOVE": str(FIXTURES / "glove/tiny.50d.txt"),
}


def fixture_archive(workdir: Path) -> str:
    run = workdir / "glove_char"
    if not (run / "model.tar.gz").exists():
        subprocess.run(
            [sys.executable, "-m", "allennlp", "train", "training_config/conll2003_glove_char.jsonnet",
             "-s", str(run), "-f", "-o", '{"trainer.num_epochs": 1}'],
            cwd=REPO, env={**os.environ, **TRAIN_ENV}, check=True, stdout=subprocess.DEVNULL,
        )
    return str(run / "model.tar.gz")


class Prober(threading.Thread):
    """GET /healthz every `interval` s; keeps (start time, latency) of each."""

    def __init__(self, url: str, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.samples: List[Tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    client.get(self.url + "/healthz")
                    latency = time.monotonic() - started
                except httpx.HTTPError:
                    latency = float("inf")
                self.samples.append((started, latency))
                time.sleep(max(0.0, self.interval - latency))

    def between(self, start: float, end: float) -> List[float]:
        return [latency for at, latency in self.samples if start <= at <= end]


class Traffic(threading.Thread):
    """Normal requests (texts of about 100 words) one after another; keeps (end time, tokens)."""

    def __init__(self, url: str, texts: List[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.texts = url, texts
        self.done: List[Tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=60, headers=JSON_HEADERS) as client:
            index = 0
            while not self.stop.is_set():
                response = client.post(self.url + "/predict", json={"text": self.texts[index % len(self.texts)]})
                if response.status_code == 200:
                    self.done.append((time.monotonic(), len(response.json()["tokens"])))
                index += 1

    def tokens_per_second(self, start: float, end: float) -> float:
        return sum(tokens for at, tokens in self.done if start <= at <= end) / max(end - start, 1e-9)


def raw(port: int, data: bytes, read_timeout: float = 60) -> Tuple[str, float]:
    """Sends `data` on a fresh connection and waits until the server answers or closes."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as connection:
        if data:
            connection.sendall(data)
        answer = b""
        try:
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except socket.timeout:
            return "no answer", time.monotonic() - started
    code = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "closed"
    return code, time.monotonic() - started


def post(url: str, body: bytes, headers: Optional[dict] = None, path: str = "/predict") -> Tuple[str, float]:
    started = time.monotonic()
    response = httpx.post(url + path, content=body, headers={**JSON_HEADERS, **(headers or {})}, timeout=120)
    return str(response.status_code), time.monotonic() - started


def cases(url: str, port: int, words: str) -> List[Tuple[str, str, Callable[[], Tuple[str, float]]]]:
    """(name, expected code, action) of each abuse."""
    def text(value: str) -> bytes:
        return json.dumps({"text": value}).encode()

    half_body = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"text\": ")
    return [
        ("5K ')' (5,000 tokens)", "200", lambda: post(url, text(")" * 5_000))),
        ("10K ')' (10,000 tokens)", "200", lambda: post(url, text(")" * 10_000))),
        ("20K ')' (20,000 tokens: the most accepted)", "200", lambda: post(url, text(")" * 20_000))),
        ("99,000 characters of news text", "200", lambda: post(url, text(words))),
        ("1M ')'", "413", lambda: post(url, text(")" * 1_000_000))),
        ("400,000 tokens", "413", lambda: post(url, json.dumps({"tokens": ["a"] * 400_000}).encode())),
        ("10,000 tiny texts in one batch", "413",
         lambda: post(url, json.dumps([{"text": "a"}] * 10_000).encode(), path="/predict_batch")),
        ("JSON nested 10,000 deep", "400", lambda: post(url, b'{"text": "a", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}")),
        ("half-sent body", "408", lambda: raw(port, half_body)),
        ("idle connection", "closed", lambda: raw(port, b"")),
        ("text/plain from a foreign Origin", "415",
         lambda: post(url, text("Oslo"), {"Content-Type": "text/plain", "Origin": "http://evil.example"})),
        ("foreign Host (DNS rebinding)", "400", lambda: post(url, text("Oslo"), {"Host": "evil.example"})),
    ]


def news_words(corpus: Optional[Path], tokens: int) -> Tuple[str, List[str]]:
    """A text of about `tokens` tokens, and 100-word texts for normal traffic."""
    if corpus is not None and corpus.exists():
        source = corpus.read_text(encoding="utf-8", errors="replace").split()
    else:
        source = ("Maria Lindqvist flew from Oslo to Nairobi on Tuesday , officials of the Kestrel "
                  "Trading Company said .").split() * 2000
    texts = [" ".join(source[i : i + 100]) for i in range(0, 100 * 50, 100)]
    # The longest text under both limits: --max-text-chars (100,000) and --max-request-tokens.
    long_text = " ".join(source[: int(tokens * 0.8)])[:99_000]
    return long_text[: long_text.rfind(" ")], texts


def main() -> None:
    parser = benchmark_parser(__doc__, threads=[2], threads_help="the server's torch threads")
    parser.add_argument("--archive", help="a model archive (default: trained on the fixtures)")
    parser.add_argument("--corpus", type=Path, help="text for the normal traffic and the long request")
    parser.add_argument("--baseline-seconds", type=float, default=15.0)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "ner_elmo_service_abuse")
    args = parser.parse_args()
    archive = args.archive or fixture_archive(args.workdir)
    for run in each_thread_count(args, set_torch=False):  # the server's threads, not this client's
        abuse(run, archive)


def abuse(args: argparse.Namespace, archive: str) -> None:
    """One server with `args.threads` torch threads: every case, normal traffic, then SIGTERM."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "allennlp", "ner-serve", archive, "--port", str(port),
               "--threads", str(args.threads), "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(url, server)
        long_text, texts = news_words(args.corpus, 20_000)
        prober, traffic = Prober(url), Traffic(url, texts)
        prober.start()
        traffic.start()
        time.sleep(2)  # warm
        baseline_start = time.monotonic()
        time.sleep(args.baseline_seconds)
        baseline_end = time.monotonic()
        print(f"server: {' '.join(command[1:])}")
        print(f"| case | expected | answer | seconds | /healthz p50 / p99 / max ms |")
        print("|---|---|---|---|---|")
        abuse_start = time.monotonic()
        everything: List[float] = []
        for name, expected, action in cases(url, port, long_text):
            started = time.monotonic()
            code, seconds = action()
            latencies = prober.between(started, time.monotonic()) or [float("nan")]
            everything += latencies
            p50, p99 = numpy.percentile(numpy.array(latencies) * 1000, [50, 99])
            mark = "" if code == expected else " (unexpected)"
            print(f"| {name} | {expected} | {code}{mark} | {seconds:.2f} | {p50:.0f} / {p99:.0f} / {max(latencies) * 1000:.0f} |",
                  flush=True)
        abuse_end = time.monotonic()
        traffic.stop.set()
        prober.stop.set()
        traffic.join(60)
        normal = traffic.tokens_per_second(baseline_start, baseline_end)
        during = traffic.tokens_per_second(abuse_start, abuse_end)
        p99_all = numpy.percentile(numpy.array(everything) * 1000, 99)
        print(f"\n/healthz during all the abuse: p99 {p99_all:.0f} ms, max {max(everything) * 1000:.0f} ms "
              f"({len(everything)} probes)")
        print(f"normal traffic: {normal:,.0f} tokens/s without abuse, {during:,.0f} during it "
              f"({during / normal:.0%})")
        # SIGTERM with a half-sent body open: the service must still exit promptly.
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{")
        time.sleep(0.2)
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.wait(120)
        print(f"SIGTERM with a half-sent body open: exit code {code} after {time.monotonic() - started:.1f} s")
        half.close()
    finally:
        if server.poll() is None:
            server.kill()


if __name__ == "__main__":
    main()
