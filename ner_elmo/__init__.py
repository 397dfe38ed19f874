"""
ner_elmo: named-entity recognition with ELMo, as an AllenNLP plugin.

`import ner_elmo` registers every component (dataset readers, token embedders, encoders,
models, predictors, metrics, schedulers, callbacks and subcommands) with AllenNLP's registry,
and fills in the defaults of the environment variables the Jsonnet configs read (the one place
they are set: `ner_elmo.environment`). It changes nothing in allennlp (tested).

The numerical core (`ner_elmo.modules.elmo`, `ner_elmo.modules.viterbi`,
`ner_elmo.scoring`, `ner_elmo.data.tag_schemes`) needs only torch, numpy and h5py, so it can be
imported on a machine without allennlp (a GPU box for benchmarks): registration is skipped there.
"""
import importlib.util as _importlib_util
import sys as _sys

__version__ = "0.1.0"

from ner_elmo.environment import apply_defaults as _apply_defaults

_apply_defaults()


def _standalone_run() -> bool:
    # `python -m ner_elmo.pretraining` (also under torchrun) needs only torch, numpy and h5py:
    # registering would import allennlp for nothing (15-30 s per process).
    argv = getattr(_sys, "orig_argv", [])
    return any(flag == "-m" and module == "ner_elmo.pretraining" for flag, module in zip(argv, argv[1:]))


if (
    _importlib_util.find_spec("allennlp") is not None
    and _importlib_util.find_spec("allennlp_models")
    and not _standalone_run()
):
    # Each import registers the components its module defines.
    from ner_elmo.data.dataset_readers import conll_ner as _conll_ner  # noqa: F401
    from ner_elmo.data.dataset_readers import gmb_csv as _gmb_csv  # noqa: F401
    from ner_elmo.data.data_loaders import label_checked as _label_checked  # noqa: F401
    from ner_elmo.data import tag_set_vocabulary as _tag_set_vocabulary  # noqa: F401
    from ner_elmo.modules.token_embedders import ner_elmo_embedder as _ner_elmo_embedder  # noqa: F401
    from ner_elmo.modules.token_embedders import ner_embedding as _ner_embedding  # noqa: F401
    from ner_elmo.modules.token_embedders import distinct_character_encoding as _distinct_chars  # noqa: F401
    from ner_elmo.modules.seq2seq_encoders import residual_bilstm as _residual_bilstm  # noqa: F401
    from ner_elmo.modules.seq2seq_encoders import fused_bilstm as _fused_bilstm  # noqa: F401
    from ner_elmo.models import ner_crf_tagger as _ner_crf_tagger  # noqa: F401
    from ner_elmo.models import ner_simple_tagger as _ner_simple_tagger  # noqa: F401
    from ner_elmo.predictors import ner_predictor as _ner_predictor  # noqa: F401
    from ner_elmo.training.metrics import conlleval_metric as _conlleval_metric  # noqa: F401
    from ner_elmo.training.learning_rate_schedulers import inverse_time_decay as _itd  # noqa: F401
    from ner_elmo.training.moving_averages import resumable_exponential as _ema  # noqa: F401
    from ner_elmo.training.callbacks import epoch_report as _epoch_report  # noqa: F401
    from ner_elmo.training.callbacks import rng_state as _rng_state  # noqa: F401
    from ner_elmo.commands import ner_report as _ner_report  # noqa: F401
    from ner_elmo.commands import ner_html as _ner_html  # noqa: F401
    from ner_elmo.commands import ner_curves as _ner_curves  # noqa: F401
    from ner_elmo.commands import ner_predict as _ner_predict  # noqa: F401
    from ner_elmo.commands import ner_spark as _ner_spark  # noqa: F401
    from ner_elmo.commands import ner_serve as _ner_serve  # noqa: F401
    from ner_elmo.commands import elmo_pretrain as _elmo_pretrain  # noqa: F401
    from ner_elmo.training import atomic_checkpointer as _atomic_checkpointer  # noqa: F401
    from ner_elmo.training import atomic_trainer as _atomic_trainer  # noqa: F401
    from ner_elmo.training.callbacks import atomic_archive as _atomic_archive  # noqa: F401
