"""
Pretrain your own ELMo: a biLM with the architecture of bilm-tf (Peters et al. 2018), trained
on plain text with torch alone and exported as the standard `options.json` + HDF5 weight file
that allennlp's `Elmo`, its `elmo_token_embedder` and the `ner_elmo` embedder load.

Needs torch, numpy and h5py (and spaCy for the default tokenizer); never imports allennlp, so
`python -m ner_elmo.pretraining` (and `torchrun -m ner_elmo.pretraining`) runs on a GPU machine
with only those installed.  `allennlp elmo-pretrain` is the same command line.

* `corpus`: reading, tokenizing (as the `ner` predictor does) and the vocabulary;
* `streams`: bilm-tf's windows with states carried across batches;
* `model`: the trainable biLM (parameters in the bilm-tf HDF5 layout);
* `softmax`: sampled softmax (log-uniform negatives, log-Q correction, accidental hits) and the
  full softmax for perplexity;
* `trainer`: the training loop, checkpoints, validation, data parallelism;
* `export`: the ELMo files;  `presets`: architectures;  `cli`: the command line.
"""
