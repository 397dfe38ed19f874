"""
Corpus annotation on Spark (`ner_elmo.spark.annotate`) against the in-process `ner` predictor, on
the same documents as the service's load test (`benchmarks/service_load.py`).

    python benchmarks/spark_throughput.py ARCHIVE --corpus reuters21578.txt \
        [--documents 300] [--words 500] [--master local[2]] [--batch-size 32]

Prints, side by side in one run, documents/s and tokens/s of:

* the in-process predictor, model loaded and warmed, batches of `--batch-size` documents, with
  each of `--threads` torch threads (default: 1, and the master's cores);
* Spark, cold: the first job of a fresh session, so it includes starting the Python workers
  (each imports allennlp) and loading the model in each; the session's own start is printed
  apart;
* Spark, warm: the same job again at once, its workers and their models reused (what every
  job after the first in a session costs, and the steady rate of a long job).

The Spark output is checked against the in-process predictor's: one row per document and the
same entities. Tokens are the predictor's tokens of the documents.
"""
import json
import os
import re
import shutil
import time
from pathlib import Path

from toolbox import add_document_arguments, benchmark_parser, read_documents

# tqdm reads this when it is first imported: allennlp's progress bars would bury the table.
os.environ.setdefault("TQDM_DISABLE", "1")


def cores_of(master: str) -> int:
    match = re.fullmatch(r"local\[(\d+|\*)(,\d+)?\]", master)
    if match is None or match.group(1) == "*":
        return os.cpu_count() or 1
    return int(match.group(1))


def in_process(archive: str, texts, batch_size: int, threads: int):
    """(entities per document, tokens, seconds) of the loaded, warmed predictor."""
    import torch

    from ner_elmo.service.loading import load_serving_predictor

    torch.set_num_threads(threads)
    predictor = load_serving_predictor(archive, batch_size=batch_size)
    predictor.predict_batch_json([{"text": text} for text in texts[:batch_size]])  # warm
    entities, tokens = [], 0
    started = time.perf_counter()
    for begin in range(0, len(texts), batch_size):
        for output in predictor.predict_batch_json([{"text": text} for text in texts[begin : begin + batch_size]]):
            entities.append(output["entities"])
            tokens += len(output["tokens"])
    return entities, tokens, time.perf_counter() - started


def main() -> None:
    parser = benchmark_parser(__doc__, threads=None, threads_help="in-process torch threads",
                              none_means="1 and the master's cores")
    parser.add_argument("archive", help="a model archive")
    add_document_arguments(parser)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ner_elmo_spark_throughput"))
    args = parser.parse_args()

    texts, _ = read_documents(args.corpus, args.documents, args.words, 0)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    corpus = args.workdir / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    cores = cores_of(args.master)
    print(f"{len(texts)} documents of {args.words} words from {args.corpus.name}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    rows = []
    expected = None
    for threads in args.threads or sorted({1, cores}):
        entities, tokens, seconds = in_process(args.archive, texts, args.batch_size, threads)
        if expected is None:
            expected = entities  # Spark's tasks run 1 thread: compared with the first run's
        elif entities != expected:
            print(f"note: with {threads} threads, the entities of some documents differ", flush=True)
        rows.append(("in-process predictor, loaded", threads, seconds))
        print(f"in-process, {threads} torch threads: {tokens} tokens in {seconds:.1f} s", flush=True)

    from ner_elmo.spark.annotate import annotate, spark_session

    started = time.perf_counter()
    spark = spark_session(args.master, "spark-throughput", {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    print(f"Spark {spark.version} session ({args.master}) started in {time.perf_counter() - started:.1f} s", flush=True)
    for label in ("Spark, cold (workers start, load the model)", "Spark, warm (workers and model reused)"):
        output = args.workdir / "entities.parquet"
        started = time.perf_counter()
        summary = annotate(spark, args.archive, str(corpus), str(output), batch_size=args.batch_size, overwrite=True)
        elapsed = time.perf_counter() - started
        found = {row["id"]: row.asDict(recursive=True)["entities"] for row in spark.read.parquet(str(output)).collect()}
        assert summary == {"rows": len(texts), "errors": 0}, summary
        assert [found[i] for i in range(len(texts))] == expected, "Spark's entities differ from the predictor's"
        rows.append((label, f"{cores} x 1", elapsed))
        print(f"{label}: {elapsed:.1f} s", flush=True)
    spark.stop()

    print()
    print(f"| path | tasks x torch threads | seconds | documents/s | tokens/s |")
    print("|---|---|---|---|---|")
    for label, threads, elapsed in rows:
        print(f"| {label} | {threads} | {elapsed:.1f} | {len(texts) / elapsed:.1f} | {tokens / elapsed:,.0f} |")
    print(f"\n{tokens} tokens; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
