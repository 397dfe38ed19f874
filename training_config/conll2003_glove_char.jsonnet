// The CRF tagger without ELMo: GloVe 6B 50d + char-CNN -> 1-layer BiLSTM 200 -> CRF.
// One epoch on CoNLL-2003 (train + validation) takes under a minute on a CPU core.
local lib = import 'ner_elmo.libsonnet';

{
  dataset_reader: {
    type: 'ner_conll',
    tag_label: 'ner',
    coding_scheme: 'auto',
    label_encoding: 'BIOUL',
    token_indexers: lib.indexers(elmo=false),
  },
  train_data_path: std.extVar('NER_ELMO_CONLL_TRAIN'),
  validation_data_path: std.extVar('NER_ELMO_CONLL_DEV'),
  test_data_path: std.extVar('NER_ELMO_CONLL_TEST'),
  evaluate_on_test: true,
  datasets_for_vocab_creation: lib.datasets_for_vocab_creation,
  vocabulary: lib.vocabulary(label_encoding='BIOUL'),
  // One BiLSTM layer (as Lample et al. 2016 and Ma & Hovy 2016): dev F1 within seed noise of two
  // layers' (mean of 2 seeds 93.97, two layers 94.11) in about half the time (README, Results).
  // -o '{"model.encoder.num_layers": 2, "model.encoder.dropout": 0.5}' gives AllenNLP's two.
  model: lib.crf_tagger(lib.embedders(elmo=false), lib.bilstm(lib.embedding_dim(elmo=false), num_layers=1)),
  data_loader: lib.data_loader(64),
  validation_data_loader: lib.validation_data_loader(),
  trainer: lib.trainer(),
}
