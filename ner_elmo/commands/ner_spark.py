"""
The `ner-spark` subcommand: tag a corpus on Spark (`ner_elmo.spark.annotate.annotate`).

    allennlp ner-spark ARCHIVE INPUT OUTPUT [--id-column id] [--text-column text]
        [--input-format json|parquet] [--output-format parquet|json] [--master local[*]]
        [--conf KEY=VALUE ...] [--batch-size 32] [--num-partitions N] [--overwrite]
        [--cuda-device D] [-o OVERRIDES] [--predictor-args JSON]

INPUT is JSON lines or Parquet with an id column and a text column; OUTPUT, a directory, gets
one row per input row: the id, the entities and an error (see `ner_elmo.spark.annotate`). It is
written beside OUTPUT and renamed into place once the job has succeeded: with --overwrite, a
failed job leaves the previous OUTPUT as it was.
Needs the `spark` extra (pyspark) and Java 17 or newer.
"""
import argparse
import json
import time

from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError

from ner_elmo.common.safe_archive import add_trust_archive_argument


@Subcommand.register("ner-spark")
class NerSpark(Subcommand):
    """
    Tag a corpus (JSON lines or Parquet) on Spark: one output row per input row.

    Registered as a `Subcommand` with name "ner-spark".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = __doc__.strip().split("\n\n")[0]
        subparser = parser.add_parser(
            self.name,
            description=description,
            help="Tag a corpus on Spark: entities with character offsets, one row per input row.",
        )
        subparser.add_argument("archive_file", help="the archived model (model.tar.gz)")
        subparser.add_argument("input", help="JSON lines or Parquet (a file, a directory or a glob)")
        subparser.add_argument("output", help="the output directory")
        subparser.add_argument("--id-column", default="id", help="the column of the row id")
        subparser.add_argument("--text-column", default="text", help="the column of the text")
        subparser.add_argument(
            "--input-format", choices=["json", "parquet"], help="by default, from the input's name"
        )
        subparser.add_argument("--output-format", choices=["parquet", "json"], default="parquet")
        subparser.add_argument(
            "--master", default="local[*]", help="Spark master URL (local[*]: every local core)"
        )
        subparser.add_argument(
            "--conf",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a Spark setting (repeatable), e.g. --conf spark.executor.memory=8g",
        )
        subparser.add_argument(
            "--batch-size", type=int, default=32, help="rows per predictor call, sentences per forward pass"
        )
        subparser.add_argument(
            "--num-partitions", type=int, help="tasks (default: the input's, at least one per core)"
        )
        subparser.add_argument(
            "--overwrite", action="store_true", help="replace an existing output (once the job has succeeded)"
        )
        subparser.add_argument("--cuda-device", type=int, default=-1, help="GPU id of each worker (-1: CPU)")
        subparser.add_argument(
            "-o", "--overrides", default="", help="a JSON(net) structure overriding the archived config"
        )
        subparser.add_argument(
            "--predictor-args",
            default="",
            help='JSON arguments of the ner predictor, e.g. \'{"max_sentence_tokens": 100}\'',
        )
        add_trust_archive_argument(subparser)
        subparser.set_defaults(func=_ner_spark)
        return subparser


def _conf(pairs) -> dict:
    conf = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise ConfigurationError(f"--conf takes KEY=VALUE, got {pair!r}")
        conf[key.strip()] = value
    return conf


def _ner_spark(args: argparse.Namespace) -> None:
    try:
        from pyspark.sql import SparkSession

        from ner_elmo.spark.annotate import annotate, spark_session
    except ImportError as error:
        raise ConfigurationError(
            f"ner-spark needs pyspark ({error}): pip install 'ner-elmo[spark]'"
        ) from None
    predictor_args = json.loads(args.predictor_args) if args.predictor_args.strip() else {}
    started_here = SparkSession.getActiveSession() is None
    spark = spark_session(args.master, "ner-spark", _conf(args.conf))
    try:
        start = time.perf_counter()
        summary = annotate(
            spark,
            args.archive_file,
            args.input,
            args.output,
            id_column=args.id_column,
            text_column=args.text_column,
            input_format=args.input_format,
            output_format=args.output_format,
            batch_size=args.batch_size,
            num_partitions=args.num_partitions,
            overwrite=args.overwrite,
            cuda_device=args.cuda_device,
            overrides=args.overrides,
            predictor_args=predictor_args,
            trust_archive=args.trust_archive,
        )
        seconds = time.perf_counter() - start
    finally:
        if started_here:
            spark.stop()
    print(
        f"{args.output}: {summary['rows']} rows ({summary['errors']} with an error), "
        f"{args.output_format}, in {seconds:.1f} s"
    )
