"""
GMB's `ner_dataset.csv` converted to JSON-lines spans (`allennlp ner-convert`) and read back by
the `ner_jsonl_spans` reader, side by side with the `ner_gmb_csv` reader on the CSV: conversion
and reading speed (sentences/s), whether both give the same instances and vocabulary, and the
first-epoch training loss of `gmb_glove_char.jsonnet` on each (same split, same seed).

    python benchmarks/span_conversion.py $DATA/gmb/ner_dataset.csv --glove $GLOVE --sentences 3000
"""
import json
import tempfile
import time
from pathlib import Path

from toolbox import REPO, benchmark_parser, each_thread_count, training_config


def main() -> None:
    parser = benchmark_parser(__doc__, threads=[1])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--glove", default="", help="GloVe file for the training comparison (empty: random init)")
    parser.add_argument("--sentences", type=int, default=3000, help="training sentences for the one-epoch comparison")
    args = parser.parse_args()
    for _ in each_thread_count(args):
        run(args)


def run(args) -> None:
    from allennlp.common import Params
    from allennlp.data import Vocabulary

    import ner_elmo.plugin  # noqa: F401
    from ner_elmo.commands.ner_convert import convert
    from ner_elmo.data.dataset_readers.ner_gmb_csv import NerGmbCsvDatasetReader
    from ner_elmo.data.dataset_readers.ner_jsonl_spans import NerJsonlSpansDatasetReader

    work = Path(tempfile.mkdtemp(prefix="span_conversion_"))
    splits = {}
    for split in ("train", "validation"):
        started = time.perf_counter()
        count, _ = convert(f"{args.csv}#{split}", str(work / f"{split}.jsonl"))
        seconds = time.perf_counter() - started
        splits[split] = work / f"{split}.jsonl"
        print(f"ner-convert {args.csv.name}#{split} -> jsonl: {count:,} sentences in {seconds:.1f} s ({count / seconds:,.0f}/s)")

    def timed(reader, path):
        started = time.perf_counter()
        instances = list(reader.read(path))
        return instances, time.perf_counter() - started

    csv_instances, csv_seconds = timed(NerGmbCsvDatasetReader(), f"{args.csv}#train")
    span_instances, span_seconds = timed(NerJsonlSpansDatasetReader(), str(splits["train"]))
    n = len(csv_instances)
    print(
        f"reading the training split: CSV {n / csv_seconds:,.0f} sentences/s, JSON-lines spans "
        f"{len(span_instances) / span_seconds:,.0f} sentences/s ({len(span_instances):,} sentences)"
    )

    def content(instances):
        return [([t.text for t in i["tokens"].tokens], list(i["tags"].labels)) for i in instances]

    same = content(csv_instances) == content(span_instances)
    vocabularies = [Vocabulary.from_instances(instances) for instances in (csv_instances, span_instances)]
    same_vocabulary = all(
        vocabularies[0].get_token_to_index_vocabulary(namespace) == vocabularies[1].get_token_to_index_vocabulary(namespace)
        for namespace in ("tokens", "labels", "token_characters")
    )
    print(f"same tokens and tags: {same}; same vocabulary (tokens, labels, characters): {same_vocabulary}")

    losses = {}
    for name, reader, train, validation in (
        ("CSV", {"type": "ner_gmb_csv"}, f"{args.csv}#train", f"{args.csv}#validation"),
        ("spans", {"type": "ner_jsonl_spans"}, str(splits["train"]), str(splits["validation"])),
    ):
        losses[name] = first_epoch_loss(args, reader, train, validation, work / name)
    print(f"first-epoch training loss on {args.sentences:,} sentences, seed 13: CSV {losses['CSV']!r}, spans {losses['spans']!r}; equal: {losses['CSV'] == losses['spans']}")


def first_epoch_loss(args, reader, train, validation, directory: Path) -> float:
    """`gmb_glove_char.jsonnet` with `reader` in place of its reader, one epoch on the first
    `--sentences` sentences: the training loss."""
    from allennlp.commands.train import train_model
    from allennlp.common import Params

    config = training_config(REPO / "training_config" / "gmb_glove_char.jsonnet", {"NER_ELMO_GMB_CSV": str(args.csv), "NER_ELMO_GLOVE": args.glove})
    indexers = config["dataset_reader"]["token_indexers"]
    if reader["type"] == "ner_jsonl_spans":
        config["dataset_reader"] = {"type": "ner_jsonl_spans", "label_encoding": "BIOUL", "token_indexers": indexers}
    config["dataset_reader"]["max_instances"] = args.sentences
    # The training loss alone: no validation or test pass.
    config.update(train_data_path=train, evaluate_on_test=False)
    for key in ("validation_data_path", "test_data_path", "validation_data_loader"):
        config.pop(key, None)
    config["trainer"].pop("validation_metric", None)
    config["trainer"]["num_epochs"] = 1
    train_model(Params(config), directory)
    return json.loads((directory / "metrics.json").read_text())["training_loss"]


if __name__ == "__main__":
    main()
