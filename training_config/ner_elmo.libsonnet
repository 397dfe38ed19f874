// Shared pieces of the ner_elmo training configs. Each config picks a reader, the embedders it
// wants and a tagger; everything environment-specific comes from variables (see README
// "Environment variables"; ner_elmo fills in the defaults that have one when it is imported).
local env(name) = std.extVar(name);

{
  elmo_dim():: std.parseInt(env('NER_ELMO_ELMO_DIM')),
  glove_dim:: 50,
  char_cnn_dim:: 128,

  // Token indexers, named to match the embedders below.
  indexers(glove=true, chars=true, elmo=true)::
    (if glove then { tokens: { type: 'single_id', lowercase_tokens: true } } else {})
    + (if chars then { token_characters: { type: 'characters', min_padding_length: 3 } } else {})
    + (if elmo then { elmo: { type: 'elmo_characters' } } else {}),

  // The vocabularies (words, characters, labels) come from the training data alone: allennlp
  // otherwise builds them from every file a config names, validation and test included, and the
  // test score then leans on the test file's words. Each config sets
  // datasets_for_vocab_creation: lib.datasets_for_vocab_creation. Then a word or a character
  // the training data lacks maps to its namespace's unknown token (@@UNKNOWN@@), unless the word
  // has a GloVe vector (glove_embedder), and a label it lacks (an entity type, a part-of-speech
  // tag) is an error before training (ner_label_checked, below).
  datasets_for_vocab_creation:: ['train'],
  // allennlp's vocabulary from the data, plus every tag of label_encoding for each entity type the
  // training data has (I-LOC even when no location there is three words long); null: the tags
  // as they are (part of speech).
  vocabulary(label_encoding):: { type: 'ner_tag_sets', label_encoding: label_encoding },

  // allennlp's 'embedding' whose pretrained_file, missing or unreachable, fails with a message
  // naming NER_ELMO_GLOVE while the model is built. pretrained_extension: the GloVe words the
  // training data lacks join the vocabulary with their frozen vectors, so a word first seen in
  // new text has its GloVe vector instead of the unknown word's; the training words' vectors
  // are fine-tuned as before.
  glove_embedder():: {
    type: 'ner_embedding',
    embedding_dim: $.glove_dim,
    trainable: true,
    pretrained_extension: true,
  } + (if env('NER_ELMO_GLOVE') == '' then {} else { pretrained_file: env('NER_ELMO_GLOVE') }),

  // ELMo as in Peters et al. 2018's NER model: frozen biLM, learned scalar mix, no layer norm.
  elmo_embedder():: {
    type: 'ner_elmo',
    options_file: env('NER_ELMO_ELMO_OPTIONS'),
    weight_file: env('NER_ELMO_ELMO_WEIGHTS'),
    implementation: env('NER_ELMO_ELMO_IMPL'),
    output_layer: env('NER_ELMO_ELMO_LAYER'),
    cache: env('NER_ELMO_ELMO_CACHE'),
    cache_dir: env('NER_ELMO_ELMO_CACHE_DIR'),
    bilm_dtype: env('NER_ELMO_ELMO_DTYPE'),
    do_layer_norm: false,
    dropout: 0.0,
  },

  // allennlp's 'character_encoding' run once per distinct word of the batch (same outputs and
  // parameters; about half the rows): -o '{"...token_characters.type": "character_encoding"}'.
  char_cnn_embedder():: {
    type: 'distinct_character_encoding',
    // The characters indexer fills the token_characters namespace; without this the character
    // table would be sized by the word vocabulary (as in AllenNLP's published config).
    embedding: { embedding_dim: 16, vocab_namespace: 'token_characters' },
    encoder: {
      type: 'cnn',
      embedding_dim: 16,
      num_filters: $.char_cnn_dim,
      ngram_filter_sizes: [3],
      conv_layer_activation: 'relu',
    },
  },

  embedders(glove=true, chars=true, elmo=true):: {
    token_embedders:
      (if glove then { tokens: $.glove_embedder() } else {})
      + (if chars then { token_characters: $.char_cnn_embedder() } else {})
      + (if elmo then { elmo: $.elmo_embedder() } else {}),
  },

  embedding_dim(glove=true, chars=true, elmo=true)::
    (if glove then $.glove_dim else 0) + (if chars then $.char_cnn_dim else 0)
    + (if elmo then $.elmo_dim() else 0),

  // allennlp's 'lstm' computed one padded call per direction and layer (oneDNN's fused LSTM on a
  // CPU, cuDNN on a GPU) instead of PyTorch's step-by-step packed LSTM; same parameters, so
  // -o '{"model.encoder.type": "lstm", "model.encoder.bidirectional": true}' gives the stock one.
  bilstm(input_size, hidden_size=200, num_layers=2, dropout=0.5):: {
    type: 'fused_bilstm',
    input_size: input_size,
    hidden_size: hidden_size,
    num_layers: num_layers,
    // torch applies it between layers only (and warns when there is one).
    dropout: if num_layers > 1 then dropout else 0.0,
  },

  crf_tagger(embedders, encoder, label_encoding='BIOUL'):: {
    type: 'ner_crf_tagger',
    label_encoding: label_encoding,
    dropout: 0.5,
    include_start_end_transitions: false,
    text_field_embedder: embedders,
    encoder: encoder,
    // Keeps the ELMo mixing weights near uniform, as in the published config.
    regularizer: { regexes: [['scalar_parameters', { type: 'l2', alpha: 0.1 }]] },
  },

  // AllenNLP's published NER trainer: Adam 1e-3, gradient norm 5, early stopping after 25
  // epochs without a better validation F1. No cuda_device: the trainer takes GPU 0 when there is
  // one and the CPU otherwise.
  trainer(validation_metric='+f1-measure-overall', num_epochs=75, patience=25):: {
    // allennlp's gradient_descent, whose best.th is whole or absent; ner_atomic: so are the
    // checkpoints (ner_elmo/common/atomic_write.py).
    type: 'ner_gradient_descent',
    optimizer: { type: 'adam', lr: 0.001 },
    checkpointer: { type: 'ner_atomic', keep_most_recent_by_count: 3 },
    validation_metric: validation_metric,
    num_epochs: num_epochs,
    grad_norm: 5.0,
    patience: patience,
    // Validation, the best model and the archive use an exponential moving average of the weights
    // (horizon about 1,000 steps, 4-5 CoNLL epochs): +0.11 dev F1 on CoNLL-2003, 2 seeds (README, Results).
    // ner_exponential is allennlp's exponential made exact under --recover.
    // -o '{"trainer.moving_average": null}' trains without it.
    moving_average: { type: 'ner_exponential', decay: 0.999 },
    // ner_atomic_archive: the model.tar.gz written after training is whole or absent.
    callbacks: [{ type: 'ner_epoch_report' }, { type: 'rng_state' }, { type: 'ner_atomic_archive' }],
  },

  // Batches of sentences of similar length (allennlp's bucket sampler, in a new random order every
  // epoch): a batch then pads to about its mean length instead of the longest of 64 random
  // sentences, which cuts the BiLSTM's, CRF's and char-CNN's steps per batch (README, "Training
  // speed"). Override the size with -o '{"data_loader.batch_sampler.batch_size": 32}'.
  data_loader(batch_size=64):: {
    type: 'ner_label_checked',
    batch_sampler: { type: 'bucket', batch_size: batch_size, sorting_keys: ['tokens'] },
  },
  // Validation has no backward pass: bigger batches, sorted the same way. allennlp reads the
  // test data (evaluate_on_test) with this loader too. ner_label_checked: allennlp's
  // multiprocess loader, which fails before training, naming the label and the file, when the
  // data has a label the training data lacks (instead of a KeyError after the first epoch, or
  // after the whole training for the test data).
  validation_data_loader(batch_size=256):: {
    type: 'ner_label_checked',
    batch_sampler: { type: 'bucket', batch_size: batch_size, sorting_keys: ['tokens'], shuffle: false },
  },
}
