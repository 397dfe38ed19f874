"""
Tag a corpus with Spark: every row of a table with an id column and a text column becomes one
output row with the id, the text's entities (as the `ner` predictor finds them) and an error.

    from ner_elmo.spark.annotate import annotate, spark_session

    spark = spark_session("local[*]")
    annotate(spark, "runs/ner/model.tar.gz", "corpus.jsonl", "entities.parquet")

How it runs: the archive (or bundle directory, `allennlp ner-export`: then the executors import
torch and never allennlp) is shipped to the executors with `SparkContext.addFile`; the rows go
through `mapInPandas`, whose Python workers each load the `ner` predictor once (activation
cache off, as for serving) and keep it for every later task of the same archive (Spark reuses
its Python workers: `spark.python.worker.reuse`, on by default); each task runs torch on the
task's CPUs (`spark.task.cpus`). Output is written with Spark's file committer: a task that
fails and is retried leaves no rows behind, so the output has exactly one row per input row,
and `_SUCCESS` marks a complete output. It is written beside the output directory and renamed
into place when the job has succeeded, so a failed job leaves an existing output as it was.

Output rows:

* the id column, as read (its name and type);
* `entities`: `array<struct<text, label, start, end, token_start, token_end, score>>`, the
  predictor's `"entities"` (character offsets into the text, token indices into its tokens; `end`
  and `token_end` exclusive; `score` the entity's probability, null for a model without one),
  null for an error row;
* `error`: null, or why the row could not be tagged: a null, empty or non-string text, and for
  JSON lines a blank line, a line that is not JSON or not an object, or an object without the
  text key. Such a row never fails the job.

Rows come out in no particular order: join them to the input by the id (which should therefore
be unique).
"""
import atexit
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlparse

import numpy
import pandas
from pyspark import SparkFiles, TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    ArrayType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from ner_elmo.common.atomic_write import LocalFiles, atomic_directory, partial_name
from ner_elmo.runtime.inputs import UnreadableLine, _json_type

ENTITIES_COLUMN = "entities"
ERROR_COLUMN = "error"
#: One entity, with the fields (and meaning) of the `ner` predictor's entities.
ENTITY_TYPE = StructType(
    [
        StructField("text", StringType()),
        StructField("label", StringType()),
        StructField("start", IntegerType()),
        StructField("end", IntegerType()),
        StructField("token_start", IntegerType()),
        StructField("token_end", IntegerType()),
        StructField("score", DoubleType()),
    ]
)
INPUT_FORMATS = ("json", "parquet")
OUTPUT_FORMATS = ("parquet", "json")
_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".deflate", ".zst", ".lz4", ".snappy")
# The raw JSON line, parsed in the Python worker (see `read_corpus`).
_LINE_COLUMN = "__ner_elmo_line"
#: A Spark local property for tests of task retries: a task of this partition number raises
#: on its first attempt, after it has produced its first rows.
FAIL_FIRST_ATTEMPT_PROPERTY = "ner_elmo.spark.failFirstAttemptOfPartition"


class JavaNotFound(RuntimeError):
    """Spark cannot start: no `java` on PATH or in JAVA_HOME."""


def ConfigurationError(message: str) -> Exception:
    """allennlp's `ConfigurationError`, imported when the driver raises one: an executor tagging
    with a bundle never imports allennlp."""
    from allennlp.common.checks import ConfigurationError as _ConfigurationError

    return _ConfigurationError(message)


def java_executable() -> Optional[str]:
    """The `java` Spark would start: `$JAVA_HOME/bin/java`, else `java` on PATH; None if neither."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
        return os.path.join(java_home, "bin", "java")
    return shutil.which("java")


def spark_session(master: str = "local[*]", app_name: str = "ner-elmo", conf: Optional[Dict[str, str]] = None) -> SparkSession:
    """
    A SparkSession (the active one if there is one) whose Python workers run this interpreter
    (unless `PYSPARK_PYTHON` says otherwise), so that they import the same ner_elmo and allennlp.
    Raises `JavaNotFound` with what to install when there is no Java.
    """
    if SparkSession.getActiveSession() is None and java_executable() is None:
        raise JavaNotFound(
            "Spark needs Java 17 or newer and none was found (no JAVA_HOME, no java on PATH): "
            "install it, e.g. apt-get install openjdk-17-jre-headless (make install does it "
            "when run as root)"
        )
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


# ----------------------------------------------------------------------------------------------
# Driver side.


def annotate(
    spark: SparkSession,
    archive: str,
    input: str,
    output: str,
    id_column: str = "id",
    text_column: str = "text",
    input_format: Optional[str] = None,
    output_format: str = "parquet",
    batch_size: int = 32,
    num_partitions: Optional[int] = None,
    overwrite: bool = False,
    cuda_device: int = -1,
    overrides: str = "",
    predictor_args: Optional[Dict[str, Any]] = None,
    trust_archive: bool = False,
) -> Dict[str, int]:
    """
    Tag `input` (JSON lines or Parquet: a file, a directory or a glob) and write one row per
    input row to the directory `output` (Parquet, or JSON lines with `output_format="json"`).

    # Parameters

    spark : `SparkSession`
    archive : `str`
        The model archive (a local path, or a URL Spark can fetch: hdfs://, s3a://, http://).
    input : `str`
        JSON lines (one object per line: `.json`, `.jsonl`, `.ndjson`, possibly compressed) or
        Parquet, holding `id_column` and `text_column`.
    output : `str`
        The output directory.
    id_column, text_column : `str`, optional (defaults = `"id"`, `"text"`)
        The columns (keys, in JSON lines) of the row id and of the raw text to tag.
    input_format : `str`, optional (default = `None`)
        `"json"` or `"parquet"`; by default taken from the input's name (`.parquet` is Parquet).
    output_format : `str`, optional (default = `"parquet"`)
        `"parquet"` or `"json"` (JSON lines).
    batch_size : `int`, optional (default = `32`)
        Rows per predictor call and sentences per forward pass (as `ner-predict --batch-size`).
    num_partitions : `int`, optional (default = `None`)
        Tasks to split the rows into; by default the input's partitions, at least Spark's
        default parallelism (one task per core: a small file is one partition otherwise).
    overwrite : `bool`, optional (default = `False`)
        Replace an existing output directory instead of failing; it is replaced only once the
        job has succeeded (see `_write_whole`).
    cuda_device : `int`, optional (default = `-1`)
        GPU of each Python worker (-1: CPU).
    overrides : `str`, optional (default = `""`)
        JSON(net) overrides of the archived config, as `allennlp predict -o`.
    predictor_args : `Dict[str, Any]`, optional (default = `None`)
        Arguments of the `ner` predictor (`max_sentence_tokens`, ...).
    trust_archive : `bool`, optional (default = `False`)
        Load an archive whose config names components by dotted import path (see
        `ner_elmo.common.safe_archive`): only for archives you wrote. Without it such an archive
        is refused by the driver (a local archive) and by every executor.

    # Returns

    `Dict[str, int]`
        `{"rows": rows written, "errors": rows with an error}`, counted in the written output.
    """
    if output_format not in OUTPUT_FORMATS:
        raise ConfigurationError(f"output format must be one of {OUTPUT_FORMATS}, got {output_format!r}")
    frame = read_corpus(spark, input, id_column, text_column, input_format)
    tagged = annotate_dataframe(
        frame,
        archive,
        id_column,
        text_column,
        batch_size=batch_size,
        num_partitions=num_partitions,
        cuda_device=cuda_device,
        overrides=overrides,
        predictor_args=predictor_args,
        trust_archive=trust_archive,
    )
    _write_whole(tagged, output, output_format, overwrite)
    written = spark.read.schema(tagged.schema).format(output_format).load(output)
    return {
        "rows": written.count(),
        "errors": written.where(F.col(ERROR_COLUMN).isNotNull()).count(),
    }


def _write_whole(frame: DataFrame, output: str, output_format: str, overwrite: bool) -> None:
    """
    Write `frame` into a new directory beside `output` (`OUTPUT.partial-...`), which takes
    `output`'s place once the job has succeeded (`ner_elmo.common.atomic_write.atomic_directory`:
    an existing output is renamed aside, the new one renamed in, the old one deleted). A failed
    job leaves an existing output as it was, and no temporary directory (Spark's own `overwrite`
    mode deletes the output before the job starts).

    An output on the local file system (a path, or a `file:` URL) is renamed in Python and
    flushed to disk first. Another (hdfs://, s3a://, gs://, ...) is renamed by Hadoop's
    FileSystem, in the driver's JVM: on HDFS a rename is atomic; on an object store it copies
    every file, so the swap takes longer, and a driver that dies during it can leave the output
    partial, the old one still whole under its temporary name.
    """
    destination, files = _output_files(frame.sparkSession, output)
    if files.exists(destination) and not overwrite:
        raise ConfigurationError(f"the output {output} already exists: pass overwrite (--overwrite) to replace it")
    with atomic_directory(destination, files) as temporary:
        target = temporary.as_uri() if isinstance(temporary, Path) else temporary
        frame.write.mode("errorifexists").format(output_format).save(target)


class _HadoopFiles:
    """`atomic_directory`'s file operations through Hadoop's FileSystem of a URL, in the JVM."""

    def __init__(self, spark: SparkSession, url: str) -> None:
        self._path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path
        self.fs = self._path(url).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    sibling = staticmethod(partial_name)

    def exists(self, url: str) -> bool:
        return self.fs.exists(self._path(url))

    def rename(self, source: str, target: str) -> None:
        if not self.fs.rename(self._path(source), self._path(target)):
            raise OSError(f"cannot rename {source} to {target}")

    def remove(self, url: str) -> None:
        self.fs.delete(self._path(url), True)

    def sync(self, url: str) -> None:
        pass  # the store's: a closed file is durable (HDFS replicates it, object stores keep it)

    def local_path(self, url: str) -> Optional[Path]:
        """`url` on this machine's file system, or None when it is elsewhere."""
        if self.fs.getUri().getScheme() != "file":
            return None
        return Path(self.fs.makeQualified(self._path(url)).toUri().getPath())


def _output_files(spark: SparkSession, output: str):
    """`output` where Spark will write it (a path without a scheme may be on HDFS: Hadoop's
    default file system decides), with the file operations there."""
    files = _HadoopFiles(spark, output)
    local = files.local_path(output)
    return (output, files) if local is None else (local, LocalFiles)


def read_corpus(
    spark: SparkSession,
    path: str,
    id_column: str = "id",
    text_column: str = "text",
    input_format: Optional[str] = None,
) -> DataFrame:
    """
    The input as a DataFrame for `annotate_dataframe`: Parquet as it is; JSON lines as one row
    per line (blank and malformed lines included, so that each gets an error row), with the id
    parsed by Spark's JSON reader (its inferred type) and the text left for the Python worker to
    parse, so that a text that is not a string is reported instead of read as its JSON text.
    """
    input_format = input_format or _format_of(path)
    if input_format not in INPUT_FORMATS:
        raise ConfigurationError(f"input format must be one of {INPUT_FORMATS}, got {input_format!r}")
    if input_format == "parquet":
        frame = spark.read.parquet(path)
        _check_columns(path, frame.schema.names, id_column, text_column)
        return frame.select(id_column, text_column)
    inferred = spark.read.json(path).schema
    _check_columns(path, inferred.names, id_column, text_column)
    id_field = inferred[id_column]
    lines = spark.read.text(path)
    return lines.select(
        F.from_json("value", StructType([id_field]), {"mode": "PERMISSIVE"})[id_column].alias(id_column),
        F.col("value").alias(_LINE_COLUMN),
    )


def annotate_dataframe(
    frame: DataFrame,
    archive: str,
    id_column: str = "id",
    text_column: str = "text",
    batch_size: int = 32,
    num_partitions: Optional[int] = None,
    cuda_device: int = -1,
    overrides: str = "",
    predictor_args: Optional[Dict[str, Any]] = None,
    trust_archive: bool = False,
) -> DataFrame:
    """
    `frame` (with `id_column` and `text_column`, or a frame from `read_corpus`) tagged, lazily:
    a DataFrame of `id_column`, `entities` and `error` (see the module's docstring). The
    parameters are `annotate`'s.
    """
    if batch_size < 1:
        raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
    if id_column in (ENTITIES_COLUMN, ERROR_COLUMN):
        raise ConfigurationError(f"the id column may not be called {id_column!r}: the output has such a column")
    json_lines = _LINE_COLUMN in frame.schema.names
    _check_columns("the DataFrame", frame.schema.names, id_column, _LINE_COLUMN if json_lines else text_column)
    from ner_elmo.runtime.bundle import BundleError, is_bundle, read_config

    if is_bundle(archive):
        # A damaged bundle is refused here, before any executor starts; each executor checks again.
        try:
            read_config(archive)
        except BundleError as error:
            raise ConfigurationError(str(error)) from None
    elif not trust_archive and os.path.exists(archive):
        # Refused here, before any executor starts; executors check again (remote archives too).
        from ner_elmo.common.safe_archive import check_registered_types
        from ner_elmo.service.loading import archived_config

        check_registered_types(archived_config(archive), f"{archive} (config.json)")
    spark = frame.sparkSession
    tagger = _PartitionTagger(
        archive_name=_ship(spark, archive),
        id_column=id_column,
        text_column=text_column,
        json_lines=json_lines,
        batch_size=batch_size,
        cuda_device=cuda_device,
        overrides=overrides,
        predictor_args=dict(predictor_args or {}),
        trust_archive=trust_archive,
    )
    partitions = frame.rdd.getNumPartitions()
    wanted = num_partitions or max(partitions, spark.sparkContext.defaultParallelism)
    if wanted != partitions:
        frame = frame.repartition(wanted)
    schema = StructType(
        [
            frame.schema[id_column],
            StructField(ENTITIES_COLUMN, ArrayType(ENTITY_TYPE)),
            StructField(ERROR_COLUMN, StringType()),
        ]
    )
    return frame.select(id_column, _LINE_COLUMN if json_lines else text_column).mapInPandas(tagger, schema)


def _format_of(path: str) -> str:
    name = path.rstrip("/").lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(_JSON_SUFFIXES):
        return "json"
    raise ConfigurationError(
        f"cannot tell the format of {path!r} from its name: give the input format (json or parquet)"
    )


def _check_columns(source: str, names: List[str], id_column: str, text_column: str) -> None:
    missing = [name for name in (id_column, text_column) if name not in names]
    if missing:
        raise ConfigurationError(
            f"{source} has no column {' and no column '.join(map(repr, missing))}: "
            f"its columns are {', '.join(map(repr, names)) or 'none'}"
        )


_SHIPPED_LINKS: Optional[str] = None


def _ship(spark: SparkSession, archive: str) -> str:
    """
    Adds the archive to the Spark context's files and returns the name `SparkFiles.get` knows
    it by on the executors. Spark knows files by name, refuses a second file of the same name
    from another path, and never re-fetches a path it has; archives are usually all called
    model.tar.gz. So a local archive is added through a hard link (a copy across file systems)
    whose name also says which file it is (path, size, modification time): another archive, or
    one retrained at the same path, gets another name. (Spark resolves symbolic links.)
    """
    global _SHIPPED_LINKS
    parsed = urlparse(archive)
    if parsed.scheme not in ("", "file"):
        spark.sparkContext.addFile(archive)
        return os.path.basename(parsed.path.rstrip("/"))
    path = Path(parsed.path if parsed.scheme == "file" else archive).resolve()
    bundle = path.is_dir() and (path / "config.json").is_file()
    if not path.is_file() and not bundle:
        raise ConfigurationError(f"model archive {archive!r} not found")
    if bundle:  # its config.json holds every other file's SHA-256: it names the whole bundle
        identity = f"{path}\0".encode("utf-8") + (path / "config.json").read_bytes()
    else:
        status = path.stat()
        identity = f"{path}\0{status.st_size}\0{status.st_mtime_ns}".encode("utf-8")
    name = f"{hashlib.sha1(identity).hexdigest()[:16]}-{path.name}"
    if _SHIPPED_LINKS is None:
        _SHIPPED_LINKS = tempfile.mkdtemp(prefix="ner-elmo-spark-")
        atexit.register(shutil.rmtree, _SHIPPED_LINKS, True)
    link = os.path.join(_SHIPPED_LINKS, name)
    if not os.path.exists(link):
        sources = [(path, link)] if not bundle else [(member, os.path.join(link, member.name)) for member in path.iterdir()]
        if bundle:
            os.mkdir(link)
        for source, target in sources:
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
    spark.sparkContext.addFile(link, recursive=bundle)
    return name


# ----------------------------------------------------------------------------------------------
# Python worker side.

# The predictor this worker last loaded, and what it was loaded from: a worker serves every task
# of the same archive and options with one model.
_loaded: Dict[str, Any] = {"key": None, "predictor": None}


def _predictor(
    archive_name: str,
    cuda_device: int,
    overrides: str,
    predictor_args: Dict[str, Any],
    batch_size: int,
    trust_archive: bool,
):
    path = SparkFiles.get(archive_name)
    key = json.dumps([path, cuda_device, overrides, predictor_args, batch_size, trust_archive], sort_keys=True)
    if _loaded["key"] != key:
        from ner_elmo.runtime.bundle import is_bundle

        _loaded["key"] = _loaded["predictor"] = None  # free the previous model first
        if is_bundle(path):  # torch only: nothing of allennlp is imported on the executor
            import ner_elmo

            device = "cpu" if cuda_device < 0 else f"cuda:{cuda_device}"
            _loaded["predictor"] = ner_elmo.load(path, device=device, **{**predictor_args, "batch_size": batch_size})
            _loaded["key"] = key
            return _loaded["predictor"]
        from ner_elmo.service.loading import load_serving_predictor

        _loaded["predictor"] = load_serving_predictor(
            path,
            cuda_device=cuda_device,
            overrides=overrides,
            predictor_args=predictor_args,
            batch_size=batch_size,
            trust_archive=trust_archive,
        )
        _loaded["key"] = key
    return _loaded["predictor"]


class _PartitionTagger:
    """The `mapInPandas` function: tags one partition's rows, `batch_size` rows at a time."""

    def __init__(
        self,
        archive_name: str,
        id_column: str,
        text_column: str,
        json_lines: bool,
        batch_size: int,
        cuda_device: int,
        overrides: str,
        predictor_args: Dict[str, Any],
        trust_archive: bool = False,
    ) -> None:
        self.archive_name = archive_name
        self.id_column = id_column
        self.text_column = text_column
        self.json_lines = json_lines
        self.batch_size = batch_size
        self.cuda_device = cuda_device
        self.overrides = overrides
        self.predictor_args = predictor_args
        self.trust_archive = trust_archive

    def __call__(self, batches: Iterator[pandas.DataFrame]) -> Iterator[pandas.DataFrame]:
        import torch

        context = TaskContext.get()
        torch.set_num_threads(max(1, int(context.cpus())))
        predictor = _predictor(
            self.archive_name, self.cuda_device, self.overrides, self.predictor_args, self.batch_size,
            self.trust_archive,
        )
        fail_partition = context.getLocalProperty(FAIL_FIRST_ATTEMPT_PROPERTY)
        source = _LINE_COLUMN if self.json_lines else self.text_column
        for batch in batches:
            for begin in range(0, len(batch), self.batch_size):
                chunk = batch.iloc[begin : begin + self.batch_size]
                entities, errors = self._tag([_plain(value) for value in chunk[source].tolist()], predictor)
                yield pandas.DataFrame(
                    {
                        self.id_column: chunk[self.id_column].reset_index(drop=True),
                        ENTITIES_COLUMN: entities,
                        ERROR_COLUMN: pandas.Series(errors, dtype=object),
                    }
                )
                if (
                    fail_partition is not None
                    and int(fail_partition) == context.partitionId()
                    and context.attemptNumber() == 0
                ):
                    raise RuntimeError(
                        f"failure injected by {FAIL_FIRST_ATTEMPT_PROPERTY} in partition "
                        f"{context.partitionId()}, attempt 0"
                    )

    def _tag(self, values: List[Any], predictor) -> Tuple[List[Optional[list]], List[Optional[str]]]:
        texts: List[Any] = []
        errors: List[Optional[str]] = []
        for value in values:
            text, error = self._parse_line(value, predictor) if self.json_lines else (value, None)
            texts.append(text)
            errors.append(error)
        inputs = [{"text": text} for text, error in zip(texts, errors) if error is None]
        outputs = iter(predictor.predict_batch_json(inputs))
        entities: List[Optional[list]] = []
        for index, error in enumerate(errors):
            if error is None:
                output = next(outputs)
                if "error" in output:
                    errors[index] = _rename_text_key(output["error"], self.text_column)
                else:
                    entities.append(output["entities"])
                    continue
            entities.append(None)
        return entities, errors

    def _parse_line(self, line: Optional[str], predictor) -> Tuple[Any, Optional[str]]:
        """(the text value, None), or (None, why the line gives no text value)."""
        value = predictor.load_line(line or "")
        if isinstance(value, UnreadableLine):
            return None, value["error"]
        if not isinstance(value, dict):
            return None, f"expected a JSON object, got {_json_type(value)}"
        if self.text_column not in value:
            return None, f"the object has no {self.text_column!r} key"
        return value[self.text_column], None


def _rename_text_key(message: str, text_column: str) -> str:
    """The predictor names its input key 'text'; the user knows the column by its own name."""
    prefix = "'text' "
    if message.startswith(prefix) and text_column != "text":
        return f"{text_column!r} {message[len(prefix):]}"
    return message


def _plain(value: Any) -> Any:
    """A pandas cell as the Python value JSON would give: None for a null, lists for arrays."""
    if value is None or value is pandas.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, numpy.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, numpy.generic):
        return value.item()
    return value
