// conll2003_elmo.jsonnet with the encoder of conll2003_glove_char.jsonnet: ELMo + GloVe 6B 50d +
// char-CNN -> 1-layer BiLSTM 200 -> CRF (BIOUL), the weight average. The same model as
// `conll2003_elmo.jsonnet -o '{"model.encoder.num_layers": 1}'` (torch applies the encoder's
// dropout between layers only, so one layer has none either way).
//
// What it reproduces: the results log's `conll2003_elmo.jsonnet` rows with that override, the
// best test F1 of the log, trained with this project's own CPU-pretrained ELMo: with the
// 245-minute ELMo 89.88, 89.99, 89.40, 90.22 (seeds 1-4, 20 epochs) and 89.85, 90.29 (seeds 1-2,
// 50 epochs); with the 166-minute one 89.82, 89.94 (seeds 1-2, 20 epochs). Set NER_ELMO_ELMO_OPTIONS
// and NER_ELMO_ELMO_WEIGHTS to that ELMo's options.json and lm_weights.hdf5 and
// NER_ELMO_ELMO_DIM=256 (docs/pretraining.md); add -o
// '{"dataset_reader.document_context_tokens": 128, "data_loader.batch_sampler.batch_size": 8}'
// for the document-context row (89.95). Those rows were built with the dev and test words in the
// vocabulary (allennlp's default then); this config, like the others, builds it from the
// training data and extends it with every GloVe word, so its scores may differ from those rows'.
// With the official ELMo (the defaults, NER_ELMO_ELMO_DIM=1024) it is untested.
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
  model: lib.crf_tagger(lib.embedders(), lib.bilstm(lib.embedding_dim(), num_layers=1)),
  data_loader: lib.data_loader(64),
  validation_data_loader: lib.validation_data_loader(),
  trainer: lib.trainer(),
}
