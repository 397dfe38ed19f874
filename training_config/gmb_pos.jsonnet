// Part-of-speech tagging on the GMB corpus (its POS column, 42 tags): ELMo + GloVe + char-CNN ->
// 2-layer BiLSTM -> CRF without span constraints. Selected and reported by token accuracy.
local lib = import 'ner_elmo.libsonnet';
local csv = std.extVar('NER_ELMO_GMB_CSV');

{
  dataset_reader: {
    type: 'ner_gmb_csv',
    tag_label: 'pos',
    token_indexers: lib.indexers(),
  },
  train_data_path: csv + '#train',
  validation_data_path: csv + '#validation',
  test_data_path: csv + '#test',
  evaluate_on_test: true,
  datasets_for_vocab_creation: lib.datasets_for_vocab_creation,
  vocabulary: lib.vocabulary(label_encoding=null),
  model: lib.crf_tagger(lib.embedders(), lib.bilstm(lib.embedding_dim()), label_encoding=null),
  data_loader: lib.data_loader(64),
  validation_data_loader: lib.validation_data_loader(),
  trainer: lib.trainer(validation_metric='+accuracy', num_epochs=30, patience=5),
}
