"""
The two matrix products of every LSTM time step, `state @ W_recurrent (+ input products)`
and `cell output @ W_projection`, for one direction or both at once.  They dominate the biLM's
time: at each step only the still-running sentences (often a dozen) multiply the whole
weight matrices, and plain `bmm` re-packs the weights on every call.

`BatchedStepProducts` works everywhere (any device, reduced precision, gradients).
`OneDnnStepProducts` keeps the weights pre-packed in oneDNN's blocked layout on CPU (the
format PyTorch's own CPU compiler uses for frozen linear layers), about 1.4x faster for
these small products; it is for frozen float32 weights only and needs PyTorch's oneDNN
linear op, which `onednn_packing_available` checks (numerically) before it is used.
"""
import copy
import logging
import warnings
from typing import List, Optional

import torch

logger = logging.getLogger(__name__)

# A hint for oneDNN's weight layout: the typical number of sentences still running at a step.
_PACKING_BATCH_HINT = 16
_onednn_checked: Optional[bool] = None
_int8_checked: Optional[bool] = None


def batched_matmul(inputs: torch.Tensor, weight: torch.Tensor, compute_dtype: Optional[torch.dtype]) -> torch.Tensor:
    """Batched `inputs @ weight`, in `compute_dtype` when given (result float32)."""
    if compute_dtype is None:
        return torch.bmm(inputs, weight)
    return torch.bmm(inputs.to(compute_dtype), weight).float()


class BatchedStepProducts:
    """
    Step products as batched matrix products over the two directions.

    # Parameters

    recurrent_weight : `torch.Tensor`
        `(2, hidden_dim, 4 * cell_dim)`.
    projection_weight : `torch.Tensor`
        `(2, cell_dim, hidden_dim)`.
    compute_dtype : `torch.dtype`, optional
        Precision of the products (the weights must already be in it); results are float32.
    """

    def __init__(
        self,
        recurrent_weight: torch.Tensor,
        projection_weight: torch.Tensor,
        compute_dtype: Optional[torch.dtype] = None,
    ) -> None:
        self.recurrent_weight = recurrent_weight
        self.projection_weight = projection_weight
        self.compute_dtype = compute_dtype

    def recurrent(self, state: torch.Tensor, step_inputs: torch.Tensor) -> torch.Tensor:
        """`step_inputs + state @ W_recurrent`, `(2, active, 4 * cell_dim)`."""
        if self.compute_dtype is None:
            return torch.baddbmm(step_inputs, state, self.recurrent_weight)
        return batched_matmul(state, self.recurrent_weight, self.compute_dtype) + step_inputs

    def project(self, cell_output: torch.Tensor) -> torch.Tensor:
        """`cell_output @ W_projection`, `(2, active, hidden_dim)`."""
        return batched_matmul(cell_output, self.projection_weight, self.compute_dtype)

    def select(self, directions: slice) -> "BatchedStepProducts":
        """The products of some directions only (their tensors then have that many rows first)."""
        return BatchedStepProducts(self.recurrent_weight[directions], self.projection_weight[directions], self.compute_dtype)


def _pack(weight: torch.Tensor) -> torch.Tensor:
    """oneDNN's packed form of `weight` `(in, out)` for `x @ weight`."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach().t().contiguous(), _PACKING_BATCH_HINT)


def _packed_linear(inputs: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(inputs, packed, None, "none", [], "")


def _packed_linear_add(inputs: torch.Tensor, other: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise.binary(inputs, other, packed, None, "add")


def onednn_packing_available() -> bool:
    """
    Whether PyTorch's oneDNN packed linear ops exist here and agree with `torch.mm`
    (checked once per process on a small product).
    """
    global _onednn_checked
    if _onednn_checked is None:
        _onednn_checked = False
        try:
            if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
                generator = torch.Generator().manual_seed(0)
                inputs = torch.randn(5, 64, generator=generator)
                other = torch.randn(5, 96, generator=generator)
                weight = torch.randn(64, 96, generator=generator)
                packed = _pack(weight)
                expected = torch.mm(inputs, weight)
                _onednn_checked = bool(
                    torch.allclose(_packed_linear(inputs, packed), expected, atol=1e-4)
                    and torch.allclose(_packed_linear_add(inputs, other, packed), expected + other, atol=1e-4)
                )
        except (RuntimeError, AttributeError) as error:  # an op missing or unsupported in this build
            logger.info("oneDNN packed linear ops unavailable (%s): using bmm", error)
    return _onednn_checked


class _PerDirectionPackedProducts:
    """Packed weights kept per direction (`recurrent_packed`, `projection_packed`)."""

    recurrent_packed: List[torch.Tensor]
    projection_packed: List[torch.Tensor]

    def select(self, directions: slice):
        """The products of some directions only, sharing the packed weights."""
        selected = copy.copy(self)
        selected.recurrent_packed = self.recurrent_packed[directions]
        selected.projection_packed = self.projection_packed[directions]
        return selected


class OneDnnStepProducts(_PerDirectionPackedProducts):
    """
    Step products with oneDNN-packed weights, one product per direction (CPU, float32,
    frozen weights).  Build once per set of weights: packing copies them.

    # Parameters

    recurrent_weight : `torch.Tensor`
        `(2, hidden_dim, 4 * cell_dim)`.
    projection_weight : `torch.Tensor`
        `(2, cell_dim, hidden_dim)`.
    """

    def __init__(self, recurrent_weight: torch.Tensor, projection_weight: torch.Tensor) -> None:
        self.recurrent_packed: List[torch.Tensor] = [_pack(w) for w in recurrent_weight]
        self.projection_packed: List[torch.Tensor] = [_pack(w) for w in projection_weight]

    def recurrent(self, state: torch.Tensor, step_inputs: torch.Tensor) -> torch.Tensor:
        return _stack(
            [_packed_linear_add(state[d], step_inputs[d], w) for d, w in enumerate(self.recurrent_packed)]
        )

    def project(self, cell_output: torch.Tensor) -> torch.Tensor:
        return _stack([_packed_linear(cell_output[d], w) for d, w in enumerate(self.projection_packed)])



def _stack(outputs: List[torch.Tensor]) -> torch.Tensor:
    return outputs[0].unsqueeze(0) if len(outputs) == 1 else torch.stack(outputs)



def _cpu_has_vnni() -> bool:
    """AVX-512 VNNI multiplies int8 without the saturation of older x86 int8 instructions, so
    inputs can use the full 8-bit range; elsewhere fbgemm's reduced (7-bit) range is safer."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return "avx512_vnni" in cpuinfo.read()
    except OSError:
        return False


def _pack_int8(weight: torch.Tensor) -> torch.Tensor:
    """fbgemm's packed form of `weight` `(in, out)`, int8 with one scale per output column."""
    rows = weight.detach().float().t().contiguous()
    scales = rows.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    zero_points = torch.zeros(rows.size(0), dtype=torch.long)
    with warnings.catch_warnings():
        # PyTorch announces the removal of quantized tensors; `int8_step_products_available`
        # turns false (and int8 falls back to float32, with a warning) on a PyTorch without them.
        warnings.simplefilter("ignore", UserWarning)
        quantized = torch.quantize_per_channel(rows, scales.double(), zero_points, 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(quantized, None)


def int8_step_products_available() -> bool:
    """Whether this PyTorch has fbgemm's dynamically quantized linear op (x86 CPUs), checked
    once per process on a small product."""
    global _int8_checked
    if _int8_checked is None:
        _int8_checked = False
        try:
            if "fbgemm" in torch.backends.quantized.supported_engines or "x86" in torch.backends.quantized.supported_engines:
                generator = torch.Generator().manual_seed(0)
                inputs = torch.randn(5, 64, generator=generator)
                weight = torch.randn(64, 96, generator=generator)
                expected = inputs @ weight
                got = torch.ops.quantized.linear_dynamic(inputs, _pack_int8(weight), True)
                _int8_checked = bool((got - expected).abs().max() <= 0.05 * expected.abs().max())
        except (RuntimeError, AttributeError) as error:
            logger.info("int8 dynamically quantized linear unavailable (%s)", error)
    return _int8_checked


class Int8StepProducts(_PerDirectionPackedProducts):
    """
    Step products with int8 weights (one scale per output column) and int8 inputs quantized per
    call (fbgemm, CPU, frozen weights): a quarter of the weight bytes each memory-bound step
    reads, 2-5x faster per step on a CPU with AVX-512 VNNI, at about 1% of a product's largest
    value in error.  An input's scale comes from all the rows of its call, so unlike the
    float32 products a sentence's numbers then depend, slightly, on the rest of its batch.

    # Parameters

    recurrent_weight : `torch.Tensor`
        `(2, hidden_dim, 4 * cell_dim)`.
    projection_weight : `torch.Tensor`
        `(2, cell_dim, hidden_dim)`.
    """

    def __init__(self, recurrent_weight: torch.Tensor, projection_weight: torch.Tensor) -> None:
        self.recurrent_packed: List[torch.Tensor] = [_pack_int8(w) for w in recurrent_weight]
        self.projection_packed: List[torch.Tensor] = [_pack_int8(w) for w in projection_weight]
        self.reduce_range = not _cpu_has_vnni()

    def recurrent(self, state: torch.Tensor, step_inputs: torch.Tensor) -> torch.Tensor:
        return _stack(
            [
                torch.ops.quantized.linear_dynamic(state[d].contiguous(), w, self.reduce_range) + step_inputs[d]
                for d, w in enumerate(self.recurrent_packed)
            ]
        )

    def project(self, cell_output: torch.Tensor) -> torch.Tensor:
        return _stack(
            [
                torch.ops.quantized.linear_dynamic(cell_output[d].contiguous(), w, self.reduce_range)
                for d, w in enumerate(self.projection_packed)
            ]
        )
