"""
Loading an archive for prediction: the `ner` predictor, as `allennlp predict --predictor ner`
builds it, through the checks of `ner_elmo.common.safe_archive` (safe extraction, registered
types only, weights as data) and with the ELMo activation cache turned off. The service, Spark,
`ner-predict` and `ner-html` all load through `load_serving_predictor`.

The configs archive a `ner_elmo` embedder with an in-memory activation cache (up to 4 GB): it
speeds up training epochs, but at inference every new sentence is a miss, so in a service it
only grows. `serving_overrides` finds every `ner_elmo` embedder in the archived config and
overrides its `cache` to `"none"`; archives of other embedders (allennlp's
`elmo_token_embedder`, GloVe, characters) need nothing.
"""
import json
import logging
import os
import functools
import tarfile
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from allennlp.common.checks import ConfigurationError
from allennlp.common.file_utils import cached_path
from allennlp.common.params import parse_overrides
from allennlp.predictors import Predictor

from ner_elmo.common.safe_archive import load_archive_safely, serialization_directory
from ner_elmo.predictors.ner import NerPredictor

logger = logging.getLogger(__name__)

_CONFIG_NAME = "config.json"


def archived_config(archive_file: str) -> Dict[str, Any]:
    """
    The `config.json` of an archive (a path, a URL, or a serialization directory), read as
    plain JSON without extracting anything.
    """
    resolved = cached_path(archive_file)
    try:
        if os.path.isdir(resolved):
            with open(os.path.join(resolved, _CONFIG_NAME), "rb") as stream:
                return json.loads(stream.read().decode("utf-8"))
        with tarfile.open(resolved, "r:*") as archive:
            for member in archive.getmembers():
                if member.isfile() and os.path.normpath(member.name) == _CONFIG_NAME:
                    stream = archive.extractfile(member)
                    assert stream is not None
                    return json.loads(stream.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ConfigurationError(f"{archive_file}: {_CONFIG_NAME} is not readable JSON: {error!r}") from None
    raise FileNotFoundError(f"{archive_file}: no {_CONFIG_NAME} in the archive")


def _components(value: Any, path: str) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """Every object in a config with its dotted path (list items by index, as allennlp's overrides)."""
    if isinstance(value, dict):
        yield path, value
        for key, item in value.items():
            yield from _components(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _components(item, f"{path}.{index}" if path else str(index))


def serving_overrides(config: Dict[str, Any]) -> Dict[str, Any]:
    """Dotted overrides turning off the activation cache of every `ner_elmo` embedder in `config`."""
    return {
        f"{path}.cache": "none"
        for path, component in _components(config.get("model", {}), "model")
        if component.get("type") == "ner_elmo"
    }


def activation_caches(model: Any) -> List[Tuple[str, Any]]:
    """The (module name, cache) of every module of `model` that has an activation cache on."""
    return [
        (name, module.activation_cache)
        for name, module in model.named_modules()
        if getattr(module, "activation_cache", None) is not None
    ]


def load_serving_predictor(
    archive_file: str,
    cuda_device: int = -1,
    weights_file: Optional[str] = None,
    overrides: str = "",
    predictor_args: Optional[Dict[str, Any]] = None,
    batch_size: int = 32,
    trust_archive: bool = False,
    predictor_name: Optional[str] = "ner",
) -> NerPredictor:
    """
    The `ner` predictor of `archive_file`, built as `allennlp predict --predictor ner` builds
    it, but loaded by `load_archive_safely` (`trust_archive` as there) and with every
    `ner_elmo` embedder's activation cache off.

    `overrides` (a JSON(net) string, as `-o`) apply after the service's own, so a user can still
    ask for a cache. `batch_size` is the predictor's sentences per forward pass.
    `predictor_name` builds another predictor instead (`None`: the archived model's default, as
    `allennlp predict` without `--predictor`); `batch_size` applies to the `ner` predictor only.
    """
    arguments = dict(predictor_args or {})
    # Extracted once: the serving overrides are read from the same directory that is loaded.
    with serialization_directory(archive_file) as directory:
        merged = serving_overrides(archived_config(directory))
        if overrides.strip():
            merged.update(parse_overrides(overrides))
        archive = load_archive_safely(
            directory,
            cuda_device=cuda_device,
            overrides=merged,
            weights_file=weights_file,
            trust_archive=trust_archive,
            source=str(archive_file),
        )
    name = predictor_name or type(archive.model).default_predictor
    if name == "ner":
        arguments.setdefault("batch_size", batch_size)
    predictor = Predictor.from_archive(archive, name, dataset_reader_to_load="validation", extra_args=arguments)
    caches = activation_caches(predictor._model)
    if caches:
        logger.warning(
            "activation cache left on by the overrides in %s: it grows with every new sentence",
            ", ".join(name for name, _ in caches),
        )
    return predictor


def command_model_loader(
    args, batch_size: int, predictor_args: Dict[str, Any], predictor_name: Optional[str] = "ner"
) -> Callable[[], Any]:
    """
    What `allennlp ner-predict`, `ner-serve` and `ner-html` tag with, as a function that loads
    it: for a bundle directory (`args.archive_file`), its torch-only tagger with
    `predictor_args` (the archive-only arguments refused); for an archive,
    `load_serving_predictor` with the command's `--cuda-device`, `--weights-file`, `-o`,
    `--trust-archive` and `predictor_name` (`ner-html --predictor`; `None`: the archive's own).
    """
    from ner_elmo.runtime.bundle import is_bundle

    if is_bundle(args.archive_file):
        if args.weights_file or args.overrides.strip():
            raise ConfigurationError("--weights-file and -o apply to archives, not to a bundle")
        if predictor_name not in (None, "ner"):
            raise ConfigurationError(f"a bundle tags as the ner predictor does: predictor {predictor_name!r} applies to archives")
        device = "cpu" if args.cuda_device < 0 else f"cuda:{args.cuda_device}"

        def load_bundle():
            import ner_elmo

            return ner_elmo.load(args.archive_file, device=device, **{**predictor_args, "batch_size": batch_size})

        return load_bundle
    return functools.partial(
        load_serving_predictor,
        args.archive_file,
        cuda_device=args.cuda_device,
        weights_file=args.weights_file,
        overrides=args.overrides,
        predictor_args={**predictor_args, "batch_size": batch_size},
        batch_size=batch_size,
        trust_archive=args.trust_archive,
        predictor_name=predictor_name,
    )
