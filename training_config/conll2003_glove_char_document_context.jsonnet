// conll2003_glove_char.jsonnet with document context: consecutive sentences of a CoNLL document
// (between -DOCSTART- lines) joined into instances of at most 128 tokens, in bucketed batches of
// 8 instances (about as many tokens as 64 sentences). The tagger trains and decodes a joined
// instance as separate sentences, so no entity crosses a sentence boundary; ner-report and
// allennlp evaluate read the files the same way. The same model as
// `conll2003_glove_char.jsonnet -o '{"dataset_reader.document_context_tokens": 128,
// "data_loader.batch_sampler.batch_size": 8}'`.
//
// What it reproduces: the results log's rows with those overrides from commits a6058cf and
// 7765b82 on (the earlier ones decoded a joined instance as one sequence): the best test F1 of
// the configs without ELMo, 89.86 for seeds 1 and 2 at 20 epochs (dev 94.08, 94.18). Those rows
// were built with the dev and test words in the vocabulary (allennlp's default then); this
// config, like the others, builds it from the training data and extends it with every GloVe
// word. An option, not the default config: its models score about 0.2 dev F1 lower on lone
// sentences, which is what the predictor tags (docs/lab/results-log.md, "Trials on the dev set").
local lib = import 'ner_elmo.libsonnet';

{
  dataset_reader: {
    type: 'ner_conll',
    tag_label: 'ner',
    coding_scheme: 'auto',
    label_encoding: 'BIOUL',
    token_indexers: lib.indexers(elmo=false),
    document_context_tokens: 128,
  },
  train_data_path: std.extVar('NER_ELMO_CONLL_TRAIN'),
  validation_data_path: std.extVar('NER_ELMO_CONLL_DEV'),
  test_data_path: std.extVar('NER_ELMO_CONLL_TEST'),
  evaluate_on_test: true,
  datasets_for_vocab_creation: lib.datasets_for_vocab_creation,
  vocabulary: lib.vocabulary(label_encoding='BIOUL'),
  model: lib.crf_tagger(lib.embedders(elmo=false), lib.bilstm(lib.embedding_dim(elmo=false), num_layers=1)),
  data_loader: lib.data_loader(8),
  validation_data_loader: lib.validation_data_loader(),
  trainer: lib.trainer(),
}
