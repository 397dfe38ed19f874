"""
The AllenNLP plugin: importing this module registers every component of the package (dataset
readers, token embedders, encoders, models, predictors, metrics, schedulers, callbacks and
subcommands) with AllenNLP's registry, and fills in the defaults of the environment variables
the Jsonnet configs read (`ner_elmo.environment`). It changes nothing in allennlp (tested).

`import ner_elmo` imports this module only when allennlp is already loaded, which is the case
when allennlp imports its plugins (`.allennlp_plugins` listing `ner_elmo`) or a package
(`--include-package ner_elmo`): every `allennlp` command gets the components, and a script
that only tags text with a bundle (`ner_elmo.load`) never pays allennlp's import. A script that
imports `ner_elmo` before allennlp and then builds models from configs imports this module.
"""
from ner_elmo.environment import apply_defaults as _apply_defaults

_apply_defaults()

# Each import registers the components its module defines.
from ner_elmo.data.dataset_readers import ner_conll as _ner_conll  # noqa: E402,F401
from ner_elmo.data.dataset_readers import ner_gmb_csv as _ner_gmb_csv  # noqa: E402,F401
from ner_elmo.data.dataset_readers import ner_jsonl_spans as _ner_jsonl_spans  # noqa: E402,F401
from ner_elmo.data.data_loaders import ner_label_checked as _ner_label_checked  # noqa: E402,F401
from ner_elmo.data import ner_tag_sets as _ner_tag_sets  # noqa: E402,F401
from ner_elmo.modules.token_embedders import ner_elmo as _ner_elmo  # noqa: E402,F401
from ner_elmo.modules.token_embedders import ner_embedding as _ner_embedding  # noqa: E402,F401
from ner_elmo.modules.token_embedders import distinct_character_encoding as _distinct_chars  # noqa: E402,F401
from ner_elmo.modules.seq2seq_encoders import residual_bilstm as _residual_bilstm  # noqa: E402,F401
from ner_elmo.modules.seq2seq_encoders import fused_bilstm as _fused_bilstm  # noqa: E402,F401
from ner_elmo.models import ner_crf_tagger as _ner_crf_tagger  # noqa: E402,F401
from ner_elmo.models import ner_simple_tagger as _ner_simple_tagger  # noqa: E402,F401
from ner_elmo.predictors import ner as _ner  # noqa: E402,F401
from ner_elmo.training.metrics import conlleval as _conlleval  # noqa: E402,F401
from ner_elmo.training.learning_rate_schedulers import inverse_time_decay as _itd  # noqa: E402,F401
from ner_elmo.training.moving_averages import ner_exponential as _ema  # noqa: E402,F401
from ner_elmo.training.callbacks import ner_epoch_report as _ner_epoch_report  # noqa: E402,F401
from ner_elmo.training.callbacks import rng_state as _rng_state  # noqa: E402,F401
from ner_elmo.commands import ner_report as _ner_report  # noqa: E402,F401
from ner_elmo.commands import ner_html as _ner_html  # noqa: E402,F401
from ner_elmo.commands import ner_curves as _ner_curves  # noqa: E402,F401
from ner_elmo.commands import ner_predict as _ner_predict  # noqa: E402,F401
from ner_elmo.commands import ner_spark as _ner_spark  # noqa: E402,F401
from ner_elmo.commands import ner_serve as _ner_serve  # noqa: E402,F401
from ner_elmo.commands import ner_export as _ner_export  # noqa: E402,F401
from ner_elmo.commands import ner_calibrate as _ner_calibrate  # noqa: E402,F401
from ner_elmo.commands import elmo_pretrain as _elmo_pretrain  # noqa: E402,F401
from ner_elmo.commands import ner_accuracy as _ner_accuracy  # noqa: E402,F401
from ner_elmo.commands import ner_results as _ner_results  # noqa: E402,F401
from ner_elmo.commands import ner_convert as _ner_convert  # noqa: E402,F401
from ner_elmo.training import ner_atomic as _ner_atomic  # noqa: E402,F401
from ner_elmo.training import ner_gradient_descent as _ner_gradient_descent  # noqa: E402,F401
from ner_elmo.training.callbacks import ner_atomic_archive as _ner_atomic_archive  # noqa: E402,F401
