import itertools
import json
import logging
import os
from typing import Any, Dict, List, Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.modules.scalar_mix import ScalarMix
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder

from ner_elmo.environment import ELMO_OPTIONS_URL, ELMO_WEIGHTS_URL
from ner_elmo.modules.elmo.layer_mix import mix_layers, remove_sentence_boundaries
from ner_elmo.modules.elmo_cache import (
    CACHE_DTYPES,
    DiskActivationStore,
    ElmoActivationCache,
    MemoryActivationStore,
    module_fingerprint,
)
from ner_elmo.modules.token_embedders.pretrained_files import local_copy

logger = logging.getLogger(__name__)

IMPLEMENTATIONS = ("fast", "stock")
CACHE_KINDS = ("none", "memory", "disk")
BILM_DTYPES = ("float32", "bfloat16", "float16", "int8")


def output_layer_names(num_lstm_layers: int) -> Dict[str, Optional[int]]:
    """`output_layer` values -> biLM layer (`None`: the learned mix of all layers)."""
    names: Dict[str, Optional[int]] = {"elmo": None, "word_emb": 0}
    for layer in range(1, num_lstm_layers + 1):
        names[f"lstm_outputs{layer}"] = layer
    return names


@TokenEmbedder.register("ner_elmo")
class NerElmoTokenEmbedder(TokenEmbedder):
    """
    ELMo representations of the tokens, a drop-in for allennlp's "elmo_token_embedder" (same
    `"elmo_characters"` indexer, same keys) that can also output a single biLM layer, runs
    ner_elmo's fast biLM and caches a frozen biLM's activations per sentence.

    The output is `(batch_size, timesteps, get_output_dim())` with the sentence marks removed;
    dropout is applied after the layers are mixed (or picked), then the optional projection, as
    in allennlp's `Elmo`.

    Differences from "elmo_token_embedder":

    * `implementation: "stock"` runs allennlp's `_ElmoBiLm`, whose LSTM is *stateful*: allennlp
      starts each batch from the states the previous batch left, so a sentence's embedding
      depends on what was embedded before it.  Here its states are reset before every biLM
      call, so embeddings depend only on the sentence (which caching needs).
      `implementation: "fast"` (ner_elmo's `FastElmoBiLm`) is stateless to begin with.
    * With a frozen biLM (`requires_grad: false`) and `cache` on, each distinct sentence runs
      through the biLM once; later batches read its layer activations from the cache (see
      `ner_elmo.modules.elmo_cache`) and only the mixing weights (and projection) train.  Keys
      hash the biLM's loaded tensors, options and class, so another weight file, a loaded
      archive's weights or a dtype cast can never read another model's entries.  With the
      default `cache_dtype` cached embeddings are bit-identical to uncached ones computed in the
      same batch; across batch compositions they differ by float32 round-off only.
    * `vocab_to_cache` (allennlp's per-word character-CNN cache) is not supported: the sentence
      cache makes it moot.

    `cache_dtype: "float16"` halves the cache's memory.  Rounding to float16 moves a value by at
    most 2**-11 of its magnitude (half a float16 step; under 3e-8 for values below 6.1e-5).  In
    the original ELMo the first LSTM layer is clipped to +-3 (`proj_clip`) and the second adds
    its input to that (+-6), so their error stays below 9.8e-4 and 2.0e-3; the token layer is
    not bounded.  Measured by `benchmarks/train_epoch.py` (128 CoNLL-2003 sentences, the
    original ELMo's architecture with seeded random weights): max absolute error 9.77e-4, over
    activations up to 3.93 in magnitude.  An entry that would overflow float16 is kept in
    float32.

    Registered as a `TokenEmbedder` with name "ner_elmo".

    # Parameters

    options_file : `str`
        An ELMo JSON options file (path or URL).
    weight_file : `str`
        An ELMo HDF5 weight file (path or URL).  Both files are fetched while the embedder is
        built; one that cannot be had raises `ConfigurationError` naming it, the reason and the
        setting to point at a local copy (see `pretrained_files.local_copy`).
    do_layer_norm : `bool`, optional (default = `False`)
        Layer-normalise each layer before mixing (`ScalarMix`); only with `output_layer: "elmo"`.
    dropout : `float`, optional (default = `0.5`)
        Dropout on the representation, after mixing.
    requires_grad : `bool`, optional (default = `False`)
        Fine-tune the biLM.  The cache is then bypassed (with a warning): activations change as
        the weights train.
    projection_dim : `int`, optional (default = `None`)
        If given, a linear projection of the representation down to this size.
    scalar_mix_parameters : `List[float]`, optional (default = `None`)
        Fixed, untrained pre-softmax mixing weights (one per layer); only with
        `output_layer: "elmo"`.
    output_layer : `str`, optional (default = `"elmo"`)
        `"elmo"`: the learned `ScalarMix` of all layers.  A single layer, with Spark NLP's
        `setPoolingLayer` names: `"word_emb"` (layer 0, the character-CNN token embedding),
        `"lstm_outputs1"`, `"lstm_outputs2"`.  Every choice has the same output size,
        `2 * projection_dim` of the options: `"word_emb"` is the token embedding twice
        (`[e; e]`), exactly as the biLM hands layer 0 to the mix.
    implementation : `str`, optional (default = `"fast"`)
        `"fast"`: `ner_elmo.modules.elmo.bilm.FastElmoBiLm`; `"stock"`: allennlp's `_ElmoBiLm`.
    cache : `str`, optional (default = `"memory"`)
        `"memory"` (an LRU bounded by `cache_max_megabytes`), `"disk"` (`.npy` files under
        `cache_dir`, unbounded, shared by every run with the same weights) or `"none"`.  Only
        used when `requires_grad` is false.
    cache_dir : `str`, optional (default = `None`)
        Directory of the disk cache; required with `cache: "disk"`.
    cache_max_megabytes : `float`, optional (default = `4096`)
        Bound of the memory cache (arrays plus a small per-sentence overhead).  With the
        original ELMo an entry takes 10 KB per position (tokens plus the two sentence marks) in
        float32, about 11 KB per CoNLL-2003 token: train and dev together take about 2.9 GB.
    cache_dtype : `str`, optional (default = `"float32"`)
        `"float32"` (exact) or `"float16"` (half the memory, error above).
    bilm_dtype : `str`, optional (default = `"float32"`)
        Precision of the fast biLM's LSTM matrix products (see `FastElmoBiLm`'s `dtype`):
        `"bfloat16"` or `"float16"` for GPUs, `"int8"` for the per-step products on CPU, with
        the tolerances documented there.  Cache entries are keyed by it, so runs in different
        precisions never share them.
    """

    def __init__(
        self,
        options_file: str = ELMO_OPTIONS_URL,
        weight_file: str = ELMO_WEIGHTS_URL,
        do_layer_norm: bool = False,
        dropout: float = 0.5,
        requires_grad: bool = False,
        projection_dim: Optional[int] = None,
        scalar_mix_parameters: Optional[List[float]] = None,
        output_layer: str = "elmo",
        implementation: str = "fast",
        cache: str = "memory",
        cache_dir: Optional[str] = None,
        cache_max_megabytes: float = 4096,
        cache_dtype: str = "float32",
        bilm_dtype: str = "float32",
    ) -> None:
        super().__init__()
        # Local copies (downloaded once, into allennlp's cache), so that a missing file or an
        # unreachable URL fails here, naming the variable to set; FastElmoBiLm opens paths only.
        local_options = local_copy(options_file, "ELMo options file", "options_file", "NER_ELMO_ELMO_OPTIONS")
        with open(local_options, "r", encoding="utf-8") as options_stream:
            options_text = options_stream.read()
        try:
            num_lstm_layers = int(json.loads(options_text)["lstm"]["n_layers"])
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigurationError(f"{options_file}: not an ELMo options file ({error!r})") from error

        layer_names = output_layer_names(num_lstm_layers)
        if output_layer not in layer_names:
            raise ConfigurationError(f"output_layer must be one of {list(layer_names)}, got {output_layer!r}")
        if implementation not in IMPLEMENTATIONS:
            raise ConfigurationError(f"implementation must be one of {list(IMPLEMENTATIONS)}, got {implementation!r}")
        if cache not in CACHE_KINDS:
            raise ConfigurationError(f"cache must be one of {list(CACHE_KINDS)}, got {cache!r}")
        if cache_dtype not in CACHE_DTYPES:
            raise ConfigurationError(f"cache_dtype must be one of {sorted(CACHE_DTYPES)}, got {cache_dtype!r}")
        if cache == "disk" and not cache_dir:
            raise ConfigurationError('cache: "disk" needs a cache_dir')
        if bilm_dtype not in BILM_DTYPES:
            raise ConfigurationError(f"bilm_dtype must be one of {list(BILM_DTYPES)}, got {bilm_dtype!r}")
        if bilm_dtype != "float32" and implementation != "fast":
            raise ConfigurationError(f'bilm_dtype {bilm_dtype!r} needs implementation "fast"')
        single_layer = layer_names[output_layer]
        if single_layer is not None and (do_layer_norm or scalar_mix_parameters is not None):
            raise ConfigurationError(
                f'do_layer_norm and scalar_mix_parameters apply to output_layer "elmo" only, '
                f"not to {output_layer!r}"
            )

        local_weights = local_copy(weight_file, "ELMo weights file", "weight_file", "NER_ELMO_ELMO_WEIGHTS")
        self._implementation = implementation
        if implementation == "fast":
            try:
                from ner_elmo.modules.elmo.bilm import FastElmoBiLm
            except ImportError as error:
                raise ConfigurationError(
                    f'implementation "fast" needs ner_elmo.modules.elmo.bilm.FastElmoBiLm ({error}); '
                    'use implementation "stock"'
                ) from error
            self._bilm = FastElmoBiLm(local_options, local_weights, requires_grad=requires_grad, dtype=bilm_dtype)
        else:
            from allennlp.modules.elmo import _ElmoBiLm

            self._bilm = _ElmoBiLm(local_options, local_weights, requires_grad=requires_grad)

        num_layers = num_lstm_layers + 1
        self._layers = list(range(num_layers)) if single_layer is None else [single_layer]
        if single_layer is None:
            self._scalar_mix: Optional[ScalarMix] = ScalarMix(
                num_layers,
                do_layer_norm=do_layer_norm,
                initial_scalar_parameters=scalar_mix_parameters,
                trainable=scalar_mix_parameters is None,
            )
        else:
            self._scalar_mix = None
        self._dropout = torch.nn.Dropout(p=dropout)
        bilm_dim = self._bilm.get_output_dim()
        if projection_dim:
            self._projection: Optional[torch.nn.Linear] = torch.nn.Linear(bilm_dim, projection_dim)
            self.output_dim = projection_dim
        else:
            self._projection = None
            self.output_dim = bilm_dim

        # Plain attributes, not submodules: the cache never changes the state dict, so a model
        # trained with it loads without it and the other way round.
        self._options_text = options_text
        # The local copies the biLM was built from (the bundle exporter copies them).
        self._options_file, self._weight_file = local_options, local_weights
        self._fingerprint: Optional[str] = None
        self._fingerprint_signature: tuple = ()
        self._warned_unfrozen = False
        self._activation_cache: Optional[ElmoActivationCache] = None
        if cache != "none" and requires_grad:
            logger.warning("ELMo cache %r is bypassed: the biLM is fine-tuned (requires_grad true)", cache)
        elif cache != "none":
            store = (
                MemoryActivationStore(int(cache_max_megabytes * 2**20))
                if cache == "memory"
                else DiskActivationStore(os.path.expanduser(cache_dir))
            )
            self._activation_cache = ElmoActivationCache(store, bilm_dim, self._layers, cache_dtype)

    def get_output_dim(self) -> int:
        return self.output_dim

    @property
    def activation_cache(self) -> Optional[ElmoActivationCache]:
        """The cache in use (`None` when off or bypassed); its `hits`/`misses` count sentences."""
        return self._activation_cache

    def _run_bilm(self, char_ids: torch.Tensor) -> Dict[str, Any]:
        if self._implementation == "stock":
            # allennlp's ElmoLstm carries its states over from the previous call.
            self._bilm._elmo_lstm.reset_states()
        return self._bilm(char_ids)

    def _tensors_signature(self) -> tuple:
        # Changes whenever a biLM tensor is replaced (load, cast, move) or written in place
        # (torch bumps `_version` on every in-place write, `load_state_dict`'s copies included).
        return tuple(
            (tensor.data_ptr(), tensor._version, tensor.dtype, tensor.device, tuple(tensor.shape))
            for tensor in itertools.chain(self._bilm.parameters(), self._bilm.buffers())
        )

    def _bilm_fingerprint(self) -> str:
        """The biLM's `module_fingerprint`, retaken only when its tensors may have changed."""
        signature = self._tensors_signature()
        if self._fingerprint is None or signature != self._fingerprint_signature:
            bilm_class = f"{type(self._bilm).__module__}.{type(self._bilm).__qualname__}"
            # FastElmoBiLm's optional reduced-precision products change its outputs too.
            precision = f"compute_dtype={getattr(self._bilm, 'compute_dtype', None)}"
            self._fingerprint = module_fingerprint(self._bilm, self._options_text, bilm_class, precision)
            self._fingerprint_signature = signature
        return self._fingerprint

    def _bilm_is_frozen(self) -> bool:
        # Someone may unfreeze the biLM after construction: its activations would then train.
        if any(parameter.requires_grad for parameter in self._bilm.parameters()):
            if not self._warned_unfrozen:
                logger.warning("ELMo cache bypassed: biLM parameters now require grad")
                self._warned_unfrozen = True
            return False
        return True

    def forward(self, elmo_tokens: torch.Tensor, word_inputs: torch.Tensor = None) -> torch.Tensor:
        """
        # Parameters

        elmo_tokens : `torch.Tensor`
            Character ids `(batch_size, timesteps, 50)` from the `"elmo_characters"` indexer
            (more leading dimensions are flattened and restored).
        word_inputs : `torch.Tensor`, optional
            Accepted for compatibility with "elmo_token_embedder" and ignored.

        # Returns

        `torch.Tensor` of shape `(batch_size, timesteps, get_output_dim())`, zero at padding.
        """
        original_shape = elmo_tokens.size()
        char_ids = elmo_tokens.view(-1, *original_shape[-2:]) if elmo_tokens.dim() > 3 else elmo_tokens

        if self._activation_cache is not None and self._bilm_is_frozen():
            bilm_output = self._activation_cache.activations(char_ids, self._run_bilm, self._bilm_fingerprint())
            activations = bilm_output["activations"]
        else:
            bilm_output = self._run_bilm(char_ids)
            activations = [bilm_output["activations"][layer] for layer in self._layers]
        mask_with_bos_eos = bilm_output["mask"]

        if self._scalar_mix is not None and not self._scalar_mix.do_layer_norm:
            # The computation the torch-only runtime runs (allennlp's ScalarMix, same operations).
            representation = mix_layers(activations, self._scalar_mix.scalar_parameters, self._scalar_mix.gamma)
        elif self._scalar_mix is not None:
            representation = self._scalar_mix(activations, mask_with_bos_eos)
        else:
            representation = activations[0]
        representation, _ = remove_sentence_boundaries(representation, mask_with_bos_eos)
        representation = self._dropout(representation)
        if self._projection is not None:
            representation = self._projection(representation)
        if elmo_tokens.dim() > 3:
            representation = representation.view(*original_shape[:-1], -1)
        return representation
