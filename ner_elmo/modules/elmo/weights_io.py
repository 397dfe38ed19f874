"""
Reading and writing ELMo files in the original bilm-tf layout (see `hdf5_layout`): an
`options.json` and an HDF5 weight file that allennlp's `Elmo` / `_ElmoBiLm` load.

`write_random_elmo` writes seeded random weights of any architecture, so that full-size
models can be built for speed measurements and tiny ones for tests; `write_elmo` writes given
weights, `write_elmo_directory` a directory of the pair (the pretrainer's export,
`ner_elmo.pretraining.export`).  Both replace the pair whole or not at all
(`ner_elmo.common.atomic_write`).  Command line (the pair in DIR, by `write_elmo_directory`):

```
python -m ner_elmo.modules.elmo.weights_io --options X.json --out-dir DIR --seed 0
```
"""
import argparse
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import h5py
import numpy

from ner_elmo.common.atomic_write import atomic_directory, atomic_paths
from ner_elmo.modules.elmo.hdf5_layout import (  # noqa: F401 (reading is part of this API)
    PathLike,
    check_options,
    expected_datasets,
    lstm_cell_group,
    read_options,
    read_weights,
)

OPTIONS_FILENAME = "options.json"
WEIGHTS_FILENAME = "lm_weights.hdf5"

# Root attributes that make a generated file reproducible (and provably ours).
GENERATOR_ATTRIBUTE = "generator"
GENERATOR_NAME = "ner_elmo.modules.elmo.weights_io.write_random_elmo"
SEED_ATTRIBUTE = "seed"
SCALE_ATTRIBUTE = "scale"


def _fan_in(name: str, shape: Tuple[int, ...]) -> int:
    if name == "char_embed" or len(shape) == 1:
        return 1
    # Conv kernels (1, width, char_dim, number) and matrices (in, out): all but the last axis.
    return int(numpy.prod(shape[:-1]))


def random_elmo_weights(
    options: Dict[str, Any], seed: int, scale: float = 1.0
) -> Iterator[Tuple[str, numpy.ndarray]]:
    """
    Seeded random float32 weights for `options`, as `(dataset name, array)` pairs.

    Matrices are uniform with variance `scale ** 2 / fan_in` (activations stay in range at any
    size), biases and character embeddings uniform with variance `(0.1 * scale) ** 2` and
    `scale ** 2`.  Only PCG64's plain uniform doubles (`Generator.random`) are drawn, in the
    fixed dataset order of `expected_datasets`, so a seed always gives the same weights.
    """
    rng = numpy.random.Generator(numpy.random.PCG64(seed))
    for name, shape in expected_datasets(options).items():
        if len(shape) == 1:
            std = 0.1 * scale
        else:
            std = scale / math.sqrt(_fan_in(name, shape))
        half_width = std * math.sqrt(3.0)
        values = (rng.random(shape) * 2.0 - 1.0) * half_width
        yield name, values.astype(numpy.float32)


def format_options(options: Dict[str, Any]) -> str:
    """JSON with one line per section, as the published ELMo option files are laid out."""
    sections = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in options.items()]
    return "{\n" + ",\n".join(sections) + "\n}\n"


def write_random_elmo(
    options: Dict[str, Any],
    options_path: PathLike,
    weight_path: PathLike,
    seed: int,
    scale: float = 1.0,
) -> None:
    """
    Write `options` to `options_path` and seeded random weights (see `random_elmo_weights`) in
    the bilm-tf layout to `weight_path`.  The seed and scale are kept as root attributes of the
    HDF5 file (`read_generator_record`), so a file can be regenerated and proved ours.
    """
    write_elmo(options, options_path, weight_path, *_random_elmo(options, seed, scale))


def _random_elmo(options: Dict[str, Any], seed: int, scale: float):
    """The arrays and root attributes of `write_random_elmo`."""
    attributes = {GENERATOR_ATTRIBUTE: GENERATOR_NAME, SEED_ATTRIBUTE: int(seed), SCALE_ATTRIBUTE: float(scale)}
    return random_elmo_weights(options, seed, scale), attributes


def write_elmo(
    options: Dict[str, Any],
    options_path: PathLike,
    weight_path: PathLike,
    arrays: Iterable[Tuple[str, numpy.ndarray]],
    attributes: Optional[Dict[str, Any]] = None,
) -> None:
    """
    Write `options` to `options_path` and `arrays` (`(dataset name, array)` pairs, every
    dataset of `expected_datasets(options)` with its shape, stored as float32 in the order
    given) to `weight_path`, with `attributes` on the HDF5 root.  A missing, unknown or
    misshapen dataset raises `ValueError` naming it, before anything is written.

    Both files are written under temporary names and renamed into place only when both are
    complete (`atomic_paths`): a failure (a full disk) leaves the old pair as it was and no
    temporary file, never new options beside old weights.  `write_elmo_directory` also closes
    the microseconds between the two renames.
    """
    arrays = _checked_arrays(options, options_path, weight_path, arrays)
    # The HDF5 file is built in memory: HDF5 writing to a disk that is full ignores the write
    # errors and then crashes the process (h5py 3.16, HDF5 2.0), where Python's own file writes
    # raise OSError.  It costs one more copy of the weights in memory.
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", track_order=True) as weights:
        for key, value in (attributes or {}).items():
            weights.attrs[key] = value
        for name, values in arrays:
            weights.create_dataset(name, data=values, track_times=False)
    Path(options_path).parent.mkdir(parents=True, exist_ok=True)
    Path(weight_path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_paths(options_path, weight_path) as (options_temporary, weights_temporary):
        options_temporary.write_text(format_options(options), encoding="utf-8")
        weights_temporary.write_bytes(buffer.getbuffer())


def write_elmo_directory(
    options: Dict[str, Any],
    directory: PathLike,
    arrays: Iterable[Tuple[str, numpy.ndarray]],
    attributes: Optional[Dict[str, Any]] = None,
) -> Tuple[Path, Path]:
    """
    `write_elmo` to `directory/options.json` and `directory/lm_weights.hdf5`, as a pair that is
    never mismatched: both are written into a new temporary directory beside `directory`
    (`NAME.partial-...`), which then takes its place (`atomic_directory`: an existing
    `directory` is renamed aside, the new one renamed in, the old one deleted).  A reader finds
    the old pair or the new one; a failure (a full disk) leaves the old pair as it was and no
    temporary.  A `directory` that holds other files too, or is a link or the working directory,
    is not replaced: the pair is written into it with `write_elmo`.  Returns both paths.
    """
    directory = Path(directory)
    paths = directory / OPTIONS_FILENAME, directory / WEIGHTS_FILENAME
    arrays = _checked_arrays(options, *paths, arrays)
    if not _replaceable(directory):
        write_elmo(options, *paths, arrays, attributes)
        return paths
    with atomic_directory(directory) as temporary:
        temporary.mkdir(parents=True)
        write_elmo(options, temporary / OPTIONS_FILENAME, temporary / WEIGHTS_FILENAME, arrays, attributes)
    return paths


def _replaceable(directory: Path) -> bool:
    # Only a directory of the pair alone is ours to replace.
    if not os.path.lexists(directory):
        return True
    return (
        directory.is_dir()
        and not directory.is_symlink()
        and set(os.listdir(directory)) <= {OPTIONS_FILENAME, WEIGHTS_FILENAME}
        and not Path.cwd().resolve().is_relative_to(directory.resolve())
    )


def _checked_arrays(
    options: Dict[str, Any], options_path: PathLike, weight_path: PathLike, arrays: Iterable[Tuple[str, numpy.ndarray]]
) -> List[Tuple[str, numpy.ndarray]]:
    """`arrays` as float32, checked against `options` (see `write_elmo`)."""
    check_options(options, source=str(options_path))
    arrays = [(name, numpy.asarray(values, dtype=numpy.float32)) for name, values in arrays]
    expected = expected_datasets(options)
    given = {name: values.shape for name, values in arrays}
    for name, shape in expected.items():
        if name not in given:
            raise ValueError(f"{weight_path}: no values for dataset {name!r}")
        if given[name] != shape:
            raise ValueError(f"{weight_path}: dataset {name!r} has shape {given[name]}, the options say {shape}")
    unknown = sorted(set(given) - set(expected))
    if unknown:
        raise ValueError(f"{weight_path}: datasets the options do not have: {', '.join(unknown)}")
    return arrays


def read_generator_record(weight_path: PathLike) -> Dict[str, Any]:
    """The `generator`, `seed` and `scale` attributes of a file written by `write_random_elmo`."""
    with h5py.File(weight_path, "r") as weights:
        if weights.attrs.get(GENERATOR_ATTRIBUTE) != GENERATOR_NAME:
            raise ValueError(f"{weight_path}: not written by {GENERATOR_NAME}")
        return {
            GENERATOR_ATTRIBUTE: weights.attrs[GENERATOR_ATTRIBUTE],
            SEED_ATTRIBUTE: int(weights.attrs[SEED_ATTRIBUTE]),
            SCALE_ATTRIBUTE: float(weights.attrs[SCALE_ATTRIBUTE]),
        }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Write an ELMo options.json and lm_weights.hdf5 with seeded random weights "
        "(bilm-tf layout, loadable by allennlp's Elmo)."
    )
    parser.add_argument("--options", required=True, help="an ELMo options.json giving the architecture")
    parser.add_argument("--out-dir", required=True, help=f"directory for {OPTIONS_FILENAME} and {WEIGHTS_FILENAME}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every weight's spread")
    args = parser.parse_args(argv)
    options = read_options(args.options)
    arrays, attributes = _random_elmo(options, args.seed, args.scale)
    options_path, weight_path = write_elmo_directory(options, args.out_dir, arrays, attributes)
    print(f"wrote {options_path} and {weight_path} (seed {args.seed}, scale {args.scale})")


if __name__ == "__main__":
    main()
