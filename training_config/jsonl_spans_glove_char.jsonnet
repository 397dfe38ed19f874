// The CRF tagger without ELMo (as conll2003_glove_char) on your own annotations: JSON lines of
// texts with character-offset spans, as doccano and Label Studio (JSON-min) export them, or spaCy
// DocBin files (the ner_jsonl_spans reader), with any entity types. Texts are tokenized as the
// ner predictor tokenizes them. Misaligned spans fail by default, naming the file, line and span:
// -o '{"dataset_reader.misaligned": "expand"}' (or "skip") changes them and logs what it changed.
local lib = import 'ner_elmo.libsonnet';

{
  dataset_reader: {
    type: 'ner_jsonl_spans',
    label_encoding: 'BIOUL',
    misaligned: 'error',
    token_indexers: lib.indexers(elmo=false),
  },
  train_data_path: std.extVar('NER_ELMO_SPANS_TRAIN'),
  validation_data_path: std.extVar('NER_ELMO_SPANS_DEV'),
  test_data_path: std.extVar('NER_ELMO_SPANS_TEST'),
  evaluate_on_test: true,
  datasets_for_vocab_creation: lib.datasets_for_vocab_creation,
  vocabulary: lib.vocabulary(label_encoding='BIOUL'),
  model: lib.crf_tagger(lib.embedders(elmo=false), lib.bilstm(lib.embedding_dim(elmo=false), num_layers=1)),
  data_loader: lib.data_loader(64),
  validation_data_loader: lib.validation_data_loader(),
  trainer: lib.trainer(),
}
