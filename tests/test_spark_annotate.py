"""
Corpus annotation on Spark (`ner_elmo.spark.annotate`, `allennlp ner-spark`) on `local[2,2]`:
two cores, and a failed task is tried once more.

One SparkSession serves the module, and its two Python workers are reused from test to test
(each pays allennlp's import once), so the tests keep to a few Spark jobs.
"""
import argparse
import json
import logging
from pathlib import Path

import pyspark  # noqa: F401  (the spark extra, in dev: a missing install is a failure, not a skip)
import pytest
from allennlp.common.checks import ConfigurationError  # noqa: E402
from allennlp.models.archival import load_archive  # noqa: E402
from allennlp.predictors import Predictor  # noqa: E402

from full_disk import snapshot  # noqa: E402
from ner_elmo.commands.ner_spark import NerSpark, _ner_spark  # noqa: E402
from ner_elmo.common.atomic_write import atomic_directory  # noqa: E402
from ner_elmo.spark import annotate as annotate_module  # noqa: E402
from ner_elmo.spark.annotate import (  # noqa: E402
    FAIL_FIRST_ATTEMPT_PROPERTY,
    JavaNotFound,
    annotate,
    java_executable,
    spark_session,
)
from tiny_tagger import write_archive  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

# Texts in the tiny tagger's lexicon (tests/tiny_tagger.py), so that each has known entities.
TEXTS = [
    "Maria Lindqvist flew from Oslo to Nairobi on Tuesday. She met Zoë there.",
    "Kestrel Trading Company opened an office in Oslo.",
    "Ørsted hired Maria Lindqvist.",
    "No entities here at all.",
    "Zoë and Maria Lindqvist visited ירושלים and القاهرة 😀 last year.",
    "Kestrel Trading Company and Ørsted signed in Nairobi.",
    "Oslo\n\nNairobi\n\nOslo",
    "Zoë.",
    "Maria Lindqvist",
    "the Kestrel Trading Company board met in Oslo",
    "Ørsted , Ørsted , Ørsted",
    "Flights from Oslo resume.",
]


@pytest.fixture(scope="module")
def spark():
    if java_executable() is None:
        pytest.skip(
            "Java is not installed: Spark needs Java 17 or newer (make install installs Debian's "
            "openjdk-17-jre-headless when run as root)"
        )
    session = spark_session(
        "local[2,2]",
        "ner-elmo-tests",
        {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.sql.shuffle.partitions": "2"},
    )
    yield session
    session.stop()
    # py4j logs at INFO while its connections are garbage-collected at interpreter exit, after
    # pytest has closed the log streams ("--- Logging error ---"): keep it to warnings.
    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return write_archive(tmp_path_factory.mktemp("tiny_archive"))


@pytest.fixture(scope="module")
def expected_entities(archive):
    """Each text's entities from the `ner` predictor of the same archive, in this process."""
    predictor = Predictor.from_archive(load_archive(str(archive)), "ner")
    outputs = predictor.predict_batch_json([{"text": text} for text in TEXTS])
    assert sum(len(output["entities"]) for output in outputs) >= 20  # a check that can fail
    return [output["entities"] for output in outputs]


def rows_as_dicts(frame):
    return [row.asDict(recursive=True) for row in frame.collect()]


def failed_tasks(spark, job_group: str) -> int:
    tracker = spark.sparkContext.statusTracker()
    stages = [
        stage
        for job in tracker.getJobIdsForGroup(job_group)
        for stage in tracker.getJobInfo(job).stageIds
    ]
    return sum(tracker.getStageInfo(stage).numFailedTasks for stage in stages if tracker.getStageInfo(stage))


def test_json_lines_to_parquet_one_row_per_line_when_a_task_fails_once(spark, archive, expected_entities, tmp_path):
    lines = [json.dumps({"id": index, "text": text}, ensure_ascii=False) for index, text in enumerate(TEXTS)]
    bad = {
        100: ('{"id": 100, "text": ""}', "'text' has no tokens: it is empty"),
        101: ('{"id": 101, "text": null}', "'text' must be a string, got null"),
        102: ('{"id": 102, "text": 42}', "'text' must be a string, got number"),
        103: ('{"id": 103, "text": ["Oslo"]}', "'text' must be a string, got array"),
        104: ('{"id": 104, "body": "Oslo"}', "the object has no 'text' key"),
    }
    lines[3:3] = [line for line, _ in bad.values()]
    lines[8:8] = ["{not json", "", "[1, 2]"]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "entities.parquet"

    context = spark.sparkContext
    context.setJobGroup("retried", "a task that fails on its first attempt")
    context.setLocalProperty(FAIL_FIRST_ATTEMPT_PROPERTY, "0")
    try:
        summary = annotate(spark, str(archive), str(corpus), str(output), batch_size=2, num_partitions=2)
    finally:
        context.setLocalProperty(FAIL_FIRST_ATTEMPT_PROPERTY, None)
        context.setJobGroup("other", "")
    assert failed_tasks(spark, "retried") == 1  # the retry really happened

    assert (output / "_SUCCESS").is_file()
    rows = rows_as_dicts(spark.read.parquet(str(output)))
    assert summary == {"rows": len(lines), "errors": len(bad) + 3}
    assert len(rows) == len(lines)
    by_id = {row["id"]: row for row in rows if row["id"] is not None}
    assert len(by_id) == len(TEXTS) + len(bad)  # distinct ids: nothing lost, nothing twice
    for index, entities in enumerate(expected_entities):
        assert by_id[index]["error"] is None
        assert by_id[index]["entities"] == entities
    for key, (_, error) in bad.items():
        assert by_id[key] == {"id": key, "entities": None, "error": error}
    unidentified = sorted(row["error"] for row in rows if row["id"] is None)
    assert unidentified[0] == "blank line"
    assert unidentified[1] == "expected a JSON object, got array"
    assert unidentified[2].startswith("not valid JSON: Expecting property name enclosed in double quotes")


def test_command_parquet_to_json_lines_with_named_columns(spark, archive, expected_entities, tmp_path, capsys):
    import pyarrow
    import pyarrow.parquet

    ids = [f"doc-{index}" for index in range(len(TEXTS))] + ["doc-null"]
    table = pyarrow.table({"doc_id": ids, "body": TEXTS + [None], "other": list(range(len(ids)))})
    corpus = tmp_path / "corpus.parquet"
    pyarrow.parquet.write_table(table, corpus)
    output = tmp_path / "out"
    parser = argparse.ArgumentParser()
    NerSpark().add_subparser(parser.add_subparsers())
    args = parser.parse_args([
        "ner-spark", str(archive), str(corpus), str(output), "--id-column", "doc_id", "--text-column", "body",
        "--output-format", "json", "--master", "local[2,2]", "--batch-size", "4",
    ])
    _ner_spark(args)
    assert f"{len(ids)} rows ({1} with an error)" in capsys.readouterr().out
    assert (output / "_SUCCESS").is_file()
    rows = [
        json.loads(line)
        for part in sorted(output.glob("part-*.json"))
        for line in part.read_text(encoding="utf-8").splitlines()
    ]
    by_id = {row["doc_id"]: row for row in rows}
    assert len(rows) == len(by_id) == len(ids)
    for index, entities in enumerate(expected_entities):
        assert by_id[f"doc-{index}"] == {"doc_id": f"doc-{index}", "entities": entities}
    assert by_id["doc-null"] == {"doc_id": "doc-null", "error": "'body' must be a string, got null"}

    # An existing output is kept unless --overwrite.
    with pytest.raises(Exception, match="already exists"):
        _ner_spark(args)
    args.overwrite = True
    _ner_spark(args)
    assert (output / "_SUCCESS").is_file()


def test_overwrite_keeps_the_old_output_when_the_job_fails(spark, archive, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": 0, "text": TEXTS[0]}) + "\n", encoding="utf-8")
    output = tmp_path / "out"
    output.mkdir()
    (output / "part-00000.json").write_text('{"id": 0, "entities": []}\n')
    (output / "_SUCCESS").write_text("")
    before = snapshot(output)
    # The task fails (an argument the predictor does not take) once the job has started, after
    # Spark's own overwrite mode would have deleted the output. One partition: each failed
    # attempt costs a new Python worker.
    with pytest.raises(Exception, match="no_such_argument"):
        annotate(spark, str(archive), str(corpus), str(output), num_partitions=1, overwrite=True,
                 predictor_args={"no_such_argument": 1})
    assert snapshot(output) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "out"]


def test_hadoop_file_operations_swap_a_directory_in(spark, tmp_path):
    # What an hdfs:// or s3a:// output goes through, here on a file: URL.
    url = (tmp_path / "out").as_uri()
    files = annotate_module._HadoopFiles(spark, url)
    for version in ("first", "second"):
        with atomic_directory(url, files) as temporary:
            spark.createDataFrame([(version,)], ["version"]).write.json(temporary)
        assert [row["version"] for row in spark.read.json(url).collect()] == [version]
    with pytest.raises(RuntimeError):
        with atomic_directory(url, files) as temporary:
            spark.createDataFrame([("third",)], ["version"]).write.json(temporary)
            raise RuntimeError("the job failed")
    assert [row["version"] for row in spark.read.json(url).collect()] == ["second"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_bad_arguments_fail_before_any_tagging(spark, archive, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"doc": 1, "text": "Oslo"}\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"has no column 'id': its columns are 'doc', 'text'"):
        annotate(spark, str(archive), str(corpus), str(tmp_path / "out"))
    with pytest.raises(ConfigurationError, match="cannot tell the format of"):
        annotate(spark, str(archive), str(tmp_path / "corpus.txt"), str(tmp_path / "out"))
    with pytest.raises(ConfigurationError, match="model archive '.*missing.tar.gz' not found"):
        annotate(spark, str(tmp_path / "missing.tar.gz"), str(corpus), str(tmp_path / "out"), id_column="doc")
    assert not (tmp_path / "out").exists()


def test_without_java_the_session_says_what_to_install(monkeypatch):
    monkeypatch.setattr(annotate_module, "java_executable", lambda: None)
    monkeypatch.setattr(annotate_module.SparkSession, "getActiveSession", staticmethod(lambda: None))
    with pytest.raises(JavaNotFound, match=r"Spark needs Java 17 or newer .* apt-get install openjdk-17-jre-headless"):
        spark_session("local[1]")


def test_hostile_lines_are_error_rows_and_a_hostile_archive_is_refused(spark, archive, tmp_path):
    # The hostile lines of tests/test_ner_predictor.py: too deep, too big, not an object.
    lines = [
        '{"id": 1, "text": "Oslo", "x": ' + "[" * 10_000 + "]" * 10_000 + "}",
        '{"id": 2, "text": "' + "Oslo " * 400 + '"}',
        '["not", "an", "object"]',
        '{"id": 4, "text": "Maria Lindqvist flew to Oslo."}',
    ]
    corpus = tmp_path / "hostile.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "out.parquet"
    summary = annotate(spark, str(archive), str(corpus), str(output), predictor_args={"max_text_chars": 1000})
    assert summary == {"rows": 4, "errors": 3}
    errors = sorted(row["error"] or "" for row in rows_as_dicts(spark.read.parquet(str(output))))
    assert errors == [
        "",
        "'text' has 2000 characters, more than the limit of 1000 (max_text_chars)",
        "JSON nested deeper than 64 levels (max_json_depth)",
        "expected a JSON object, got array",
    ]
    # An archive whose config would run code is refused before any task starts.
    from test_safe_archive import archive_from, good_config

    config = good_config()
    config["dataset_reader"] = {"type": "os.system", "command": f"touch {tmp_path / 'marker'}"}
    hostile = archive_from(tmp_path / "hostile_run", config)
    with pytest.raises(ConfigurationError, match=r"dataset_reader\.type is 'os\.system'"):
        annotate(spark, str(hostile), str(corpus), str(tmp_path / "never"))
    assert not (tmp_path / "marker").exists() and not (tmp_path / "never").exists()


def test_a_bundle_tags_on_the_executors_as_its_archive_does(spark, archive, expected_entities, tmp_path):
    from ner_elmo.commands.ner_export import export_bundle

    bundle = export_bundle(str(archive), str(tmp_path / "bundle"))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": index, "text": text}) + "\n" for index, text in enumerate(TEXTS)))
    summary = annotate(spark, str(bundle), str(corpus), str(tmp_path / "out.parquet"), batch_size=3, num_partitions=2)
    assert summary == {"rows": len(TEXTS), "errors": 0}
    rows = {row["id"]: row for row in rows_as_dicts(spark.read.parquet(str(tmp_path / "out.parquet")))}
    assert [rows[index]["entities"] for index in range(len(TEXTS))] == expected_entities
    # A damaged bundle is refused by the driver before any task runs.
    (bundle / "vocabulary.json").write_text("{}")
    with pytest.raises(ConfigurationError, match=r"vocabulary\.json: altered"):
        annotate(spark, str(bundle), str(corpus), str(tmp_path / "never.parquet"))
    assert not (tmp_path / "never.parquet").exists()
