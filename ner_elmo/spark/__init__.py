"""
Corpus annotation on Apache Spark (the optional `spark` extra: `pip install ner-elmo[spark]`,
and Java 17 or newer).

`ner_elmo.spark.annotate` holds the API (`annotate`, `annotate_dataframe`, `read_corpus`,
`spark_session`); `allennlp ner-spark` is its command. Importing this package needs nothing
beyond the package's own dependencies; importing `ner_elmo.spark.annotate` needs pyspark.
"""
