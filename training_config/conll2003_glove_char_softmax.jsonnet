// Softmax baseline (no CRF): GloVe + char-CNN -> 2-layer BiLSTM 200 -> per-token softmax.
// Compare with conll2003_glove_char.jsonnet to see what the CRF adds. Tags are BIO: a softmax
// can predict any sequence, and allennlp's BIOUL span metric rejects invalid ones.
local lib = import 'ner_elmo.libsonnet';

{
  dataset_reader: {
    type: 'ner_conll',
    tag_label: 'ner',
    coding_scheme: 'auto',
    label_encoding: 'BIO',
    token_indexers: lib.indexers(elmo=false),
  },
  train_data_path: std.extVar('NER_ELMO_CONLL_TRAIN'),
  validation_data_path: std.extVar('NER_ELMO_CONLL_DEV'),
  test_data_path: std.extVar('NER_ELMO_CONLL_TEST'),
  evaluate_on_test: true,
  datasets_for_vocab_creation: lib.datasets_for_vocab_creation,
  vocabulary: lib.vocabulary(label_encoding='BIO'),
  model: {
    type: 'ner_simple_tagger',
    label_encoding: 'BIO',
    text_field_embedder: lib.embedders(elmo=false),
    encoder: lib.bilstm(lib.embedding_dim(elmo=false)),
  },
  data_loader: lib.data_loader(64),
  validation_data_loader: lib.validation_data_loader(),
  trainer: lib.trainer(),
}
