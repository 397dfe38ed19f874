// NER on the Kaggle GMB corpus (ner_dataset.csv) with the Peters et al. 2018 architecture:
// ELMo + GloVe 50d + char-CNN -> 2-layer BiLSTM 200 -> CRF (BIOUL). The file has no official
// split: the ner_gmb_csv reader assigns each sentence to train/validation/test (80/10/10) by a
// seeded SHA-256 of its sentence id, chosen here by the "#split" suffix of each path.
local lib = import 'ner_elmo.libsonnet';
local csv = std.extVar('NER_ELMO_GMB_CSV');

{
  dataset_reader: {
    type: 'ner_gmb_csv',
    tag_label: 'ner',
    coding_scheme: 'BIO',
    label_encoding: 'BIOUL',
    token_indexers: lib.indexers(),
  },
  train_data_path: csv + '#train',
  validation_data_path: csv + '#validation',
  test_data_path: csv + '#test',
  evaluate_on_test: true,
  datasets_for_vocab_creation: lib.datasets_for_vocab_creation,
  vocabulary: lib.vocabulary(label_encoding='BIOUL'),
  model: lib.crf_tagger(lib.embedders(), lib.bilstm(lib.embedding_dim())),
  data_loader: lib.data_loader(64),
  validation_data_loader: lib.validation_data_loader(),
  trainer: lib.trainer(num_epochs=30, patience=5),
}
