"""
The bilm-tf HDF5 layout of ELMo weights, as allennlp's `Elmo` / `_ElmoBiLm` load it, and
reading of `options.json` and weight files with checks that name the file and the key.

```
char_embed                                   (n_characters - 1, char_dim)
CNN/W_cnn_{i}, CNN/b_cnn_{i}                 (1, width_i, char_dim, num_i), (num_i,)
CNN_high_{k}/W_transform, W_carry            (n_filters, n_filters)
CNN_high_{k}/b_transform, b_carry            (n_filters,)
CNN_proj/W_proj, b_proj                      (n_filters, projection_dim), (projection_dim,)
RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/W_0    (2 * projection_dim, 4 * dim)
RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/B      (4 * dim,)
RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/W_P_0  (dim, projection_dim)
```

(`d` = 0 forward, 1 backward; `l` the layer; float32 throughout; tensorflow conventions:
`x @ W`, LSTM gates ordered input, memory, forget, output, forget bias stored without the
+1 added at run time.  allennlp sizes the character table from the file, one row more
than stored, row 0 being the padding character.)
"""
import json
import os
from typing import Any, Dict, Tuple, Union

import h5py
import numpy

PathLike = Union[str, os.PathLike]


def lstm_cell_group(direction: int, layer: int) -> str:
    """The HDF5 group of one LSTM cell: `direction` 0 is forward, 1 backward."""
    return f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"


def read_options(options_path: PathLike) -> Dict[str, Any]:
    """
    Load and check an ELMo `options.json`; errors name the file and the missing key.
    """
    with open(options_path, "r", encoding="utf-8") as options_file:
        try:
            options = json.load(options_file)
        except json.JSONDecodeError as error:
            raise ValueError(f"{options_path}: not valid JSON: {error}") from error
    check_options(options, source=str(options_path))
    return options


def check_options(options: Dict[str, Any], source: str = "options") -> None:
    """Raise a `ValueError` naming `source` when a key the bilm needs is missing or wrong."""
    required = {
        "char_cnn": ["embedding", "filters", "n_highway", "n_characters", "activation"],
        "lstm": ["projection_dim", "dim", "n_layers"],
    }
    for section, keys in required.items():
        if section not in options:
            raise ValueError(f"{source}: missing section {section!r}")
        for key in keys:
            if key not in options[section]:
                raise ValueError(f"{source}: missing key {section}.{key}")
    if "dim" not in options["char_cnn"]["embedding"]:
        raise ValueError(f"{source}: missing key char_cnn.embedding.dim")
    if options["char_cnn"]["activation"] not in ("relu", "tanh"):
        raise ValueError(
            f"{source}: char_cnn.activation must be 'relu' or 'tanh', "
            f"got {options['char_cnn']['activation']!r}"
        )
    for filter_spec in options["char_cnn"]["filters"]:
        if len(filter_spec) != 2:
            raise ValueError(f"{source}: char_cnn.filters entries are [width, number], got {filter_spec!r}")
    if not options["lstm"].get("use_skip_connections"):
        raise ValueError(f"{source}: only biLMs with lstm.use_skip_connections = true are supported")


def expected_datasets(options: Dict[str, Any]) -> Dict[str, Tuple[int, ...]]:
    """Every dataset name of the weight file for `options`, with its shape, in writing order."""
    cnn = options["char_cnn"]
    lstm = options["lstm"]
    char_dim = cnn["embedding"]["dim"]
    n_filters = sum(number for _, number in cnn["filters"])
    projection_dim = lstm["projection_dim"]
    cell_dim = lstm["dim"]

    shapes: Dict[str, Tuple[int, ...]] = {"char_embed": (cnn["n_characters"] - 1, char_dim)}
    for i, (width, number) in enumerate(cnn["filters"]):
        shapes[f"CNN/W_cnn_{i}"] = (1, width, char_dim, number)
        shapes[f"CNN/b_cnn_{i}"] = (number,)
    for k in range(cnn["n_highway"]):
        for part in ("transform", "carry"):
            shapes[f"CNN_high_{k}/W_{part}"] = (n_filters, n_filters)
            shapes[f"CNN_high_{k}/b_{part}"] = (n_filters,)
    shapes["CNN_proj/W_proj"] = (n_filters, projection_dim)
    shapes["CNN_proj/b_proj"] = (projection_dim,)
    for direction in (0, 1):
        for layer in range(lstm["n_layers"]):
            group = lstm_cell_group(direction, layer)
            shapes[f"{group}/W_0"] = (2 * projection_dim, 4 * cell_dim)
            shapes[f"{group}/B"] = (4 * cell_dim,)
            shapes[f"{group}/W_P_0"] = (cell_dim, projection_dim)
    return shapes


def read_weights(weight_path: PathLike, options: Dict[str, Any]) -> Dict[str, numpy.ndarray]:
    """
    Every dataset the bilm needs for `options`, checked for presence, shape and dtype;
    errors name the file and the dataset.
    """
    arrays: Dict[str, numpy.ndarray] = {}
    with h5py.File(weight_path, "r") as weights:
        for name, shape in expected_datasets(options).items():
            if name == "char_embed" and name in weights:
                # allennlp sizes the character table from the file, not from n_characters.
                shape = (weights[name].shape[0], shape[1])
            if name not in weights:
                raise ValueError(f"{weight_path}: missing dataset {name!r}")
            values = weights[name][...]
            if values.shape != shape:
                raise ValueError(
                    f"{weight_path}: dataset {name!r} has shape {values.shape}, "
                    f"the options say {shape}"
                )
            arrays[name] = values.astype(numpy.float32, copy=False)
    return arrays
