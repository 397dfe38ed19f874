"""
Architectures (ELMo `options.json` contents) and the training settings that go with them.

* `tiny`: for tests and trying the commands (a few seconds per epoch of a small file).
* `cpu`: sized to train on about 10M tokens in about an hour on 2 CPU cores (see
  docs/lab/pretraining-log.md for the measured throughput).
* `small`, `medium`, `original`: the published ELMo shapes (2x1024_128_2048cnn_1xhighway,
  2x2048_256_2048cnn_1xhighway, 2x4096_512_2048cnn_2xhighway), for GPUs.
"""
import copy
from typing import Any, Dict

_FULL_FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]


def _options(filters, n_highway, char_dim, projection_dim, dim, cell_clip=3, proj_clip=3) -> Dict[str, Any]:
    return {
        "lstm": {
            "use_skip_connections": True,
            "projection_dim": projection_dim,
            "cell_clip": cell_clip,
            "proj_clip": proj_clip,
            "dim": dim,
            "n_layers": 2,
        },
        "char_cnn": {
            "activation": "relu",
            "filters": filters,
            "n_highway": n_highway,
            "embedding": {"dim": char_dim},
            "n_characters": 262,
            "max_characters_per_token": 50,
        },
    }


# Training settings of each preset (command-line options override them); bilm-tf's defaults
# unless said otherwise.
PRESETS: Dict[str, Dict[str, Any]] = {
    "tiny": {
        # Small clipping values, so that tests exercise the clipping.
        "options": _options([[1, 4], [2, 8], [3, 16]], 1, 4, 16, 32, cell_clip=1.0, proj_clip=0.5),
        "training": {"batch_size": 8, "num_samples": 32, "max_vocab_words": None},
    },
    "cpu": {
        "options": _options([[1, 32], [2, 32], [3, 64], [4, 128], [5, 256]], 1, 16, 128, 512),
        "training": {"batch_size": 64, "num_samples": 1024, "max_vocab_words": 50_000},
    },
    "small": {
        "options": _options(_FULL_FILTERS, 1, 16, 128, 1024),
        "training": {"batch_size": 128, "num_samples": 8192, "max_vocab_words": None},
    },
    "medium": {
        "options": _options(_FULL_FILTERS, 1, 16, 256, 2048),
        "training": {"batch_size": 128, "num_samples": 8192, "max_vocab_words": None},
    },
    "original": {
        "options": _options(_FULL_FILTERS, 2, 16, 512, 4096),
        "training": {"batch_size": 128, "num_samples": 8192, "max_vocab_words": None},
    },
}


def preset(name: str) -> Dict[str, Any]:
    """A deep copy of preset `name`: `{"options": ..., "training": ...}`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])
