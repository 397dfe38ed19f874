"""
From a trained `BiLm` to the standard ELMo files and back: `options.json` plus an HDF5 weight
file in the bilm-tf layout (`ner_elmo.modules.elmo.hdf5_layout`), written by
`weights_io.write_elmo_directory`, which allennlp's `Elmo`, its `elmo_token_embedder` and the
`ner_elmo` embedder load unmodified.  The softmax is not part of these files (as in bilm-tf's).
"""
import numbers
from pathlib import Path
from typing import Any, Dict, Tuple

from ner_elmo.modules.elmo import char_ids
from ner_elmo.modules.elmo.hdf5_layout import PathLike, check_options, read_options, read_weights
from ner_elmo.modules.elmo.weights_io import OPTIONS_FILENAME, write_elmo_directory
from ner_elmo.pretraining.model import BiLm

# allennlp's character table: ids 0 (padding) .. 261 (the padding character, shifted).
N_CHARACTERS = char_ids.PADDING_CHARACTER + 2


class OptionsError(ValueError):
    """ELMo options that cannot be trained and written as standard ELMo files."""


def _positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def check_exportable(options: Dict[str, Any], source: str = "options") -> None:
    """
    Raise `OptionsError` naming `source` and the key when the exported files could not be
    loaded by allennlp's `Elmo` (checked before training, so no training time is lost).
    """
    try:
        check_options(options, source=source)
    except ValueError as error:
        raise OptionsError(f"cannot export: {error}") from None
    cnn, lstm = options["char_cnn"], options["lstm"]

    def fail(message: str) -> None:
        raise OptionsError(f"{source}: cannot export: {message}")

    if cnn.get("max_characters_per_token") != char_ids.MAX_WORD_LENGTH:
        fail(
            f"char_cnn.max_characters_per_token is {cnn.get('max_characters_per_token')!r}; allennlp's "
            f"Elmo reads every token as {char_ids.MAX_WORD_LENGTH} character ids, so it must be "
            f"{char_ids.MAX_WORD_LENGTH}"
        )
    if cnn["n_characters"] != N_CHARACTERS:
        fail(
            f"char_cnn.n_characters is {cnn['n_characters']!r}; the character ids go up to "
            f"{N_CHARACTERS - 1} (allennlp adds the padding row), so it must be {N_CHARACTERS}"
        )
    if not _positive_int(cnn["embedding"]["dim"]):
        fail(f"char_cnn.embedding.dim must be a positive integer, got {cnn['embedding']['dim']!r}")
    if not cnn["filters"]:
        fail("char_cnn.filters is empty")
    for width, number in cnn["filters"]:
        if not (_positive_int(width) and _positive_int(number)) or width > char_ids.MAX_WORD_LENGTH:
            fail(
                f"char_cnn.filters entry [{width!r}, {number!r}]: the width must be an integer in "
                f"[1, {char_ids.MAX_WORD_LENGTH}] and the number of filters a positive integer"
            )
    if not (isinstance(cnn["n_highway"], numbers.Integral) and cnn["n_highway"] >= 0):
        fail(f"char_cnn.n_highway must be an integer >= 0, got {cnn['n_highway']!r}")
    for key in ("projection_dim", "dim", "n_layers"):
        if not _positive_int(lstm[key]):
            fail(f"lstm.{key} must be a positive integer, got {lstm[key]!r}")
    for key in ("cell_clip", "proj_clip"):
        if key not in lstm:
            fail(f"missing key lstm.{key} (allennlp's Elmo reads it; null means no clipping)")
        if lstm[key] is not None and not (isinstance(lstm[key], numbers.Real) and lstm[key] >= 0):
            fail(f"lstm.{key} must be a number >= 0 or null, got {lstm[key]!r}")


def training_options(options: Dict[str, Any], source: str) -> Dict[str, Any]:
    """
    The `lstm` and `char_cnn` sections of `options` (what ELMo files hold), checked with
    `check_exportable`.  bilm-tf's training files say `n_characters: 261` (its ids are not
    shifted); the published files and this trainer use 262 (allennlp's padding row 0 added), so
    261 is read as 262.
    """
    check_options(options, source=source)
    options = {"lstm": dict(options["lstm"]), "char_cnn": dict(options["char_cnn"])}
    if options["char_cnn"].get("n_characters") == N_CHARACTERS - 1:
        options["char_cnn"]["n_characters"] = N_CHARACTERS
    check_exportable(options, source=source)
    return options


def export_elmo(model: BiLm, output_dir: PathLike) -> Tuple[Path, Path]:
    """
    Write `model` as `output_dir/options.json` and `output_dir/lm_weights.hdf5`, a pair that
    replaces the old one whole or not at all (`weights_io.write_elmo_directory`: a directory of
    the pair alone is swapped for a new one; a full disk leaves the old pair and no temporary).
    Returns both paths.
    """
    check_exportable(model.options, source=str(Path(output_dir) / OPTIONS_FILENAME))
    arrays = ((name, parameter.detach().float().cpu().numpy()) for name, parameter in model.named_arrays())
    return write_elmo_directory(model.options, output_dir, arrays)


def load_elmo(options_path: PathLike, weights_path: PathLike, dropout: float = 0.1) -> BiLm:
    """
    A trainable `BiLm` holding the weights of an existing ELMo (continued pretraining).  A file
    written with bilm-tf's training options (`n_characters` 261) is read as the 262 of the
    published files, which is what allennlp does too.
    """
    options = training_options(read_options(options_path), source=str(options_path))
    arrays = read_weights(weights_path, options)
    stored_rows = arrays["char_embed"].shape[0]
    if stored_rows != N_CHARACTERS - 1:
        raise OptionsError(
            f"{weights_path}: char_embed has {stored_rows} rows; allennlp's ELMo files have "
            f"{N_CHARACTERS - 1} (one per character id but padding)"
        )
    model = BiLm(options, dropout=dropout)
    model.load_arrays(arrays, source=str(weights_path))
    return model
