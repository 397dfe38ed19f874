// NER on the Kaggle GMB corpus (ner_dataset.csv) without ELMo: GloVe 6B 50d + char-CNN ->
// 2-layer BiLSTM 200 -> CRF (BIOUL), the model of conll2003_glove_char.jsonnet. Same 80/10/10
// split as gmb_elmo.jsonnet (the "#split" suffix of each path).
local lib = import 'ner_elmo.libsonnet';
local csv = std.extVar('NER_ELMO_GMB_CSV');

{
  dataset_reader: {
    type: 'ner_gmb_csv',
    tag_label: 'ner',
    coding_scheme: 'BIO',
    label_encoding: 'BIOUL',
    token_indexers: lib.indexers(elmo=false),
  },
  train_data_path: csv + '#train',
  validation_data_path: csv + '#validation',
  test_data_path: csv + '#test',
  evaluate_on_test: true,
  datasets_for_vocab_creation: lib.datasets_for_vocab_creation,
  vocabulary: lib.vocabulary(label_encoding='BIOUL'),
  model: lib.crf_tagger(lib.embedders(elmo=false), lib.bilstm(lib.embedding_dim(elmo=false))),
  data_loader: lib.data_loader(64),
  validation_data_loader: lib.validation_data_loader(),
  trainer: lib.trainer(num_epochs=30, patience=5),
}
