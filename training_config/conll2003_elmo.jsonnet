// Peters et al. 2018's NER model as AllenNLP published it (training_config/tagging/ner_elmo.jsonnet
// in allennlp-models): ELMo 2x4096_512_2048cnn_2xhighway + GloVe 6B 50d + char-CNN (128 filters,
// width 3) -> 2-layer BiLSTM 200 -> CRF with BIOUL constraints. Validation on testa (model
// selection), test F1 on testb via evaluate_on_test. The reference result is 92.22 +/- 0.10 test F1.
// Differences from the published file: the ner_elmo embedder (fast, stateless, cached; set
// NER_ELMO_ELMO_IMPL=stock for allennlp's), batched Viterbi, conlleval metrics, shuffled batches.
local lib = import 'ner_elmo.libsonnet';

{
  dataset_reader: {
    type: 'ner_conll',
    tag_label: 'ner',
    coding_scheme: 'auto',
    label_encoding: 'BIOUL',
    token_indexers: lib.indexers(),
  },
  train_data_path: std.extVar('NER_ELMO_CONLL_TRAIN'),
  validation_data_path: std.extVar('NER_ELMO_CONLL_DEV'),
  test_data_path: std.extVar('NER_ELMO_CONLL_TEST'),
  evaluate_on_test: true,
  datasets_for_vocab_creation: lib.datasets_for_vocab_creation,
  vocabulary: lib.vocabulary(label_encoding='BIOUL'),
  model: lib.crf_tagger(lib.embedders(), lib.bilstm(lib.embedding_dim())),
  data_loader: lib.data_loader(64),
  validation_data_loader: lib.validation_data_loader(),
  trainer: lib.trainer(),
}
