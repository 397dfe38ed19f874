// The Keras + TF-Hub ELMo tutorial model on GMB, reproducible: ELMo (learned mix of the three
// layers, like TF-Hub's "elmo" output) -> two BiLSTMs of 512 whose outputs are added
// (residual_bilstm) -> per-token softmax (no CRF). Same split as gmb_elmo.jsonnet.
local lib = import 'ner_elmo.libsonnet';
local csv = std.extVar('NER_ELMO_GMB_CSV');

{
  dataset_reader: {
    type: 'ner_gmb_csv',
    tag_label: 'ner',
    coding_scheme: 'BIO',
    label_encoding: 'BIO',
    token_indexers: lib.indexers(glove=false, chars=false),
  },
  train_data_path: csv + '#train',
  validation_data_path: csv + '#validation',
  test_data_path: csv + '#test',
  evaluate_on_test: true,
  datasets_for_vocab_creation: lib.datasets_for_vocab_creation,
  vocabulary: lib.vocabulary(label_encoding='BIO'),
  model: {
    type: 'ner_simple_tagger',
    label_encoding: 'BIO',
    text_field_embedder: lib.embedders(glove=false, chars=false),
    encoder: {
      type: 'residual_bilstm',
      input_size: lib.elmo_dim(),
      hidden_size: 512,
      dropout: 0.2,
    },
  },
  data_loader: lib.data_loader(32),
  validation_data_loader: lib.validation_data_loader(),
  trainer: lib.trainer(num_epochs=30, patience=5),
}
