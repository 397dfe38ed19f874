"""
`FastElmoBiLm`: a drop-in for allennlp's `_ElmoBiLm` (same constructor and forward
contract, same numbers to float32 rounding), built for speed and for predictions that do
not depend on batch composition.

Differences from `_ElmoBiLm`, all by design:

* stateless: every call starts the LSTMs from zero state (allennlp's `ElmoLstm` carries
  the final states of one batch into the next, so its outputs depend on what ran before);
  a sentence's numbers depend on the rest of its batch only through round-off: the same
  batch gives the same bits, and alone or in another batch a sentence's activations stay
  within `BATCH_TOLERANCE` in float32 (measured on CPUs with AVX-512, AVX2 and no vector
  kernels: see `benchmarks/batch_dependence.py`).  Bit-identity across batches cannot be
  promised: a matrix product's rounding depends on its row count and the CPU's kernels;
* packed: each sequence runs over its own real positions only, sorted by length so the
  active batch shrinks as sequences end; input products for many time steps are one
  matrix product;
* the character CNN runs once per distinct token of a batch, and while it is frozen its
  outputs are kept in a bounded LRU cache keyed by the token's character ids;
* optional reduced precision (`dtype="bfloat16"` or `"float16"`, meant for CUDA) for the
  LSTM matrix products, with float32 gates and memory cells.

Needs only torch, numpy and h5py.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch

from ner_elmo.modules.elmo.char_cache import CharacterEmbeddingCache
from ner_elmo.modules.elmo.char_cnn import ElmoCharacterCnn
from ner_elmo.modules.elmo.char_ids import BOS_CHAR_IDS, EOS_CHAR_IDS, batch_to_char_ids
from ner_elmo.modules.elmo.lstm import DEFAULT_BLOCK_ROWS, StatelessElmoLstm
from ner_elmo.modules.elmo.packing import pack_by_length
from ner_elmo.modules.elmo.hdf5_layout import read_options, read_weights

DEFAULT_CHAR_CACHE_SIZE = 50_000

#: Largest |difference| allowed, in float32, between a sentence's activations alone and in a
#: batch, relative to the largest |activation| of the batch (tests hold every CPU kind to it).
BATCH_TOLERANCE = 1e-6

_DTYPES = {
    "float32": None,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "int8": torch.qint8,
}


def _compute_dtype(dtype: Union[None, str, torch.dtype]) -> Optional[torch.dtype]:
    if dtype is None or dtype == torch.float32:
        return None
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.bfloat16, torch.float16, torch.qint8):
            raise ValueError(f"dtype must be float32, bfloat16, float16 or qint8, got {dtype}")
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]


class FastElmoBiLm(torch.nn.Module):
    """
    Runs a pretrained bidirectional language model and returns the activations of every
    layer, for mixing into ELMo representations.  Call it exactly like allennlp's
    `_ElmoBiLm` (for instance as `Elmo(..., module=FastElmoBiLm(...))`).

    # Parameters

    options_file : `str`
        ELMo JSON options file.
    weight_file : `str`
        ELMo HDF5 weight file (bilm-tf layout).
    requires_grad : `bool`, optional (default = `False`)
        If True, the biLM's parameters are trained (and the character cache is not used).
    vocab_to_cache : `List[str]`, optional (default = `None`)
        Words whose character-CNN embeddings are computed up front into the character
        cache.  Unlike `_ElmoBiLm`, the forward pass still takes character ids, and words
        outside this list work too.
    char_cache_size : `int`, optional (default = `50000`)
        Most word types in the character cache (each takes `projection_dim` floats: 100 MB
        for the 512-dimensional model when full).  0 disables the cache.
    dtype : `str`, optional (default = `None`)
        `"bfloat16"` or `"float16"`: LSTM matrix products in that precision, gates, cells and
        outputs in float32, the character CNN in float32.  Meant for CUDA (on CPU it works but
        is slow).  Tolerance: on the test fixture the activations move by at most 5e-3
        (bfloat16) and 5e-4 (float16), tested against 2e-2 and 2e-3; expect differences of
        that order relative to the activations' scale.  `"int8"` (CPU, frozen biLM): the
        per-step recurrent and projection products with int8 weights and inputs (fbgemm; the
        input products and the CNN stay float32), 1.5-1.8x faster on a CPU with AVX-512 VNNI;
        on the full-size random ELMo the activations move by at most 2e-2 (mean 2.3e-3, values
        up to 1.5), tested on the fixture against 3e-2, and a sentence's numbers then depend
        slightly on its batch.  Its effect on NER accuracy has not been measured (no real ELMo
        weights here).  Where this PyTorch lacks fbgemm's quantized ops (not x86, or a build
        without them), `"int8"` runs the float32 products, with a warning.  `None` or
        `"float32"`: full precision.
    block_rows : `int`, optional (default = `512`)
        Packed positions whose LSTM input products are computed in one matrix product.
    onednn_packed_weights : `bool`, optional (default = `True`)
        On CPU, while the LSTM is frozen and float32, keep oneDNN-packed copies of its
        recurrent and projection weights for the per-step products (about 1.4x faster there;
        160 MB more for the 4096-cell model).  Used only when this PyTorch has the op.
    """

    def __init__(
        self,
        options_file: str,
        weight_file: str,
        requires_grad: bool = False,
        vocab_to_cache: Optional[List[str]] = None,
        char_cache_size: int = DEFAULT_CHAR_CACHE_SIZE,
        dtype: Union[None, str, torch.dtype] = None,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        onednn_packed_weights: bool = True,
    ) -> None:
        super().__init__()
        options = read_options(options_file)
        weights = read_weights(weight_file, options)
        self.char_cnn = ElmoCharacterCnn(options, weights, requires_grad=requires_grad)
        self.lstm = StatelessElmoLstm(
            options,
            weights,
            requires_grad=requires_grad,
            block_rows=block_rows,
            onednn_packed_weights=onednn_packed_weights,
        )
        self.output_dim = 2 * self.char_cnn.get_output_dim()
        # Representation layers: the character layer and each LSTM layer.
        self.num_layers = self.lstm.num_layers + 1
        self.compute_dtype = _compute_dtype(dtype)
        self.char_cache = CharacterEmbeddingCache(char_cache_size) if char_cache_size > 0 else None
        self.register_buffer("_bos_char_ids", torch.tensor(BOS_CHAR_IDS), persistent=False)
        self.register_buffer("_eos_char_ids", torch.tensor(EOS_CHAR_IDS), persistent=False)
        if vocab_to_cache:
            self.warm_char_cache(vocab_to_cache)

    def get_output_dim(self) -> int:
        return self.output_dim

    def char_cache_active(self) -> bool:
        """The cache is used only while no character-CNN parameter requires grad."""
        return self.char_cache is not None and not any(
            p.requires_grad for p in self.char_cnn.parameters()
        )

    def clear_caches(self) -> None:
        """Forget cached CNN outputs and weight copies; call after changing weights in place."""
        if self.char_cache is not None:
            self.char_cache.clear()
        self.lstm.clear_weight_copies()

    def warm_char_cache(self, words: List[str], batch_size: int = 1024) -> None:
        """Compute the character-CNN embeddings of `words` into the cache."""
        if not self.char_cache_active():
            return
        device = self._bos_char_ids.device
        with torch.no_grad():
            for start in range(0, len(words), batch_size):
                ids = batch_to_char_ids([words[start : start + batch_size]])[0].to(device)
                self.char_cache.embed(ids, self.char_cnn)

    def _apply(self, fn, *args, **kwargs):
        # Moving or casting the parameters invalidates anything computed from them.
        self.clear_caches()
        return super()._apply(fn, *args, **kwargs)

    def _load_from_state_dict(self, *args, **kwargs):
        self.clear_caches()
        return super()._load_from_state_dict(*args, **kwargs)

    def _embed_distinct_tokens(self, char_ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of the distinct rows of `char_ids`, and each row's index among them."""
        if self.char_cache_active():
            return self.char_cache.embed_distinct(char_ids, self.char_cnn)
        if self.char_cache is not None and len(self.char_cache):
            # The CNN may be trained from now on: what was cached may go stale.
            self.char_cache.clear()
        distinct, inverse = torch.unique(char_ids, dim=0, return_inverse=True)
        return self.char_cnn(distinct), inverse

    def forward(
        self, inputs: torch.Tensor, word_inputs: Optional[torch.Tensor] = None
    ) -> Dict[str, Union[torch.Tensor, List[torch.Tensor]]]:
        """
        # Parameters

        inputs : `torch.Tensor`
            `(batch_size, timesteps, 50)` character ids (from `batch_to_char_ids` or
            allennlp's `ELMoTokenCharactersIndexer`); all-zero rows are padding.
        word_inputs : `torch.Tensor`, optional
            Accepted for compatibility with `_ElmoBiLm` and ignored: the character cache
            plays the part of allennlp's word-id cache.

        # Returns

        Dict with keys:

        `'activations'` : `List[torch.Tensor]`
            `num_layers` tensors `(batch_size, timesteps + 2, 2 * projection_dim)`: the
            character layer (duplicated) and each LSTM layer (forward and backward halves),
            zero at padding.
        `'mask'` : `torch.BoolTensor`
            `(batch_size, timesteps + 2)`, with the added `<S>` and `</S>` positions.
        """
        batch_size, timesteps, num_characters = inputs.shape
        padded_timesteps = timesteps + 2
        device = inputs.device
        if batch_size == 0:
            empty = self._bos_char_ids.new_zeros(0, padded_timesteps, self.output_dim, dtype=torch.float32)
            return {
                "activations": [empty] * self.num_layers,
                "mask": torch.zeros(0, padded_timesteps, dtype=torch.bool, device=device),
            }

        # Add <S> and </S> as allennlp's add_sentence_boundary_token_ids does: </S> goes
        # right after the count of non-empty tokens.
        token_lengths = ((inputs > 0).sum(dim=-1) > 0).sum(dim=1)
        char_ids = inputs.new_zeros(batch_size, padded_timesteps, num_characters)
        char_ids[:, 1:-1] = inputs
        char_ids[:, 0] = self._bos_char_ids
        char_ids[torch.arange(batch_size, device=device), token_lengths + 1] = self._eos_char_ids
        mask = (char_ids > 0).sum(dim=-1) > 0
        lengths = mask.sum(dim=1)

        # Embed every position the LSTM reads (the first `lengths` ones) or the mask keeps.
        steps = torch.arange(padded_timesteps, device=device)
        needed = (mask | (steps.unsqueeze(0) < lengths.unsqueeze(1))).view(-1)
        positions = needed.nonzero().squeeze(1)
        distinct, inverse = self._embed_distinct_tokens(
            char_ids.view(-1, num_characters).index_select(0, positions)
        )
        hidden_dim = distinct.size(-1)
        flat_size = batch_size * padded_timesteps
        type_representation = distinct.new_zeros(flat_size, hidden_dim).index_copy(
            0, positions, distinct.index_select(0, inverse)
        )
        distinct_of_position = inverse.new_zeros(flat_size).index_copy(0, positions, inverse)

        layout = pack_by_length(lengths, padded_timesteps)
        layer_outputs = self.lstm(
            type_representation, layout, self.compute_dtype, (distinct, distinct_of_position)
        )

        type_representation = type_representation.view(batch_size, padded_timesteps, hidden_dim)
        activations = [
            torch.cat([type_representation, type_representation], dim=-1) * mask.unsqueeze(-1)
        ]
        zeros = type_representation.new_zeros(batch_size * padded_timesteps, hidden_dim)
        for packed in layer_outputs:
            unpacked = torch.cat(
                [
                    zeros.index_copy(0, layout.forward_index, packed[0]),
                    zeros.index_copy(0, layout.backward_index, packed[1]),
                ],
                dim=-1,
            )
            activations.append(unpacked.view(batch_size, padded_timesteps, 2 * hidden_dim))
        return {"activations": activations, "mask": mask}
