// The same CRF tagger without ELMo: GloVe 6B 50d + char-CNN -> 2-layer BiLSTM 200 -> CRF.
// One epoch on CoNLL-2003 train takes a few minutes on 2 CPU cores.
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
  model: lib.crf_tagger(lib.embedders(elmo=false), lib.bilstm(lib.embedding_dim(elmo=false))),
  data_loader: lib.data_loader(64),
  validation_data_loader: lib.validation_data_loader(),
  trainer: lib.trainer(),
}
