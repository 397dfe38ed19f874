// Part-of-speech tagging on the GMB corpus without ELMo: the gmb_pos.jsonnet tagger (CRF without
// span constraints, chosen by token accuracy) fed by GloVe 6B 50d + char-CNN only, so it trains
// without ELMo weights. Same 80/10/10 split (the "#split" suffix of each path).
local lib = import 'ner_elmo.libsonnet';
local csv = std.extVar('NER_ELMO_GMB_CSV');

{
  dataset_reader: {
    type: 'ner_gmb_csv',
    tag_label: 'pos',
    token_indexers: lib.indexers(elmo=false),
  },
  train_data_path: csv + '#train',
  validation_data_path: csv + '#validation',
  test_data_path: csv + '#test',
  evaluate_on_test: true,
  datasets_for_vocab_creation: lib.datasets_for_vocab_creation,
  vocabulary: lib.vocabulary(label_encoding=null),
  model: lib.crf_tagger(lib.embedders(elmo=false), lib.bilstm(lib.embedding_dim(elmo=false)), label_encoding=null),
  data_loader: lib.data_loader(64),
  validation_data_loader: lib.validation_data_loader(),
  trainer: lib.trainer(validation_metric='+accuracy', num_epochs=30, patience=5),
}
