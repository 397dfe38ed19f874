"""
The ELMo biLM's stacked LSTMs, stateless and packed: every call starts from zero state,
runs only the real positions of each sequence, and computes the input products of many
time steps as one matrix product.  The numbers are those of allennlp's `ElmoLstm` made
of `LstmCellWithProjection`s (memory cell clipped to `cell_clip`, projected state clipped
to `proj_clip`, each layer after the first adding its input to its output).
"""
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy
import torch

from ner_elmo.modules.elmo.hdf5_layout import lstm_cell_group
from ner_elmo.modules.elmo.packing import PackedLayout
from ner_elmo.modules.elmo.step_products import (
    BatchedStepProducts,
    Int8StepProducts,
    OneDnnStepProducts,
    batched_matmul,
    int8_step_products_available,
    onednn_packing_available,
)

logger = logging.getLogger(__name__)

# Rows of input products computed at once: enough for an efficient matrix product,
# few enough to bound memory (2 * rows * 4 * cell_dim floats; 64 MB for the 4096-cell model).
DEFAULT_BLOCK_ROWS = 512
# First-layer input products are computed per distinct word when that saves at least a fifth
# of the rows and keeps them under this many bytes (2048 distinct words of the 4096-cell model).
DISTINCT_PRODUCTS_MAX_BYTES = 256 * 2**20
# oneDNN-packed step products pay off only for large weights (4096-cell ELMo: 8M elements
# per recurrent matrix); for small ones their extra calls cost more than packing saves.
ONEDNN_MIN_WEIGHT_ELEMENTS = 2**20


def _tf_gates_to_ours(array: numpy.ndarray, cell_dim: int) -> numpy.ndarray:
    """bilm-tf orders gate columns input, memory, forget, output; we use input, forget,
    output, memory so one sigmoid covers the first three."""
    i, j, f, o = (array[..., k * cell_dim : (k + 1) * cell_dim] for k in range(4))
    return numpy.ascontiguousarray(numpy.concatenate([i, f, o, j], axis=-1))


InputProducts = Callable[[int, int], torch.Tensor]
StepProducts = Union[BatchedStepProducts, OneDnnStepProducts, Int8StepProducts]


def packed_input_products(
    inputs: torch.Tensor, input_weight: torch.Tensor, bias: torch.Tensor, compute_dtype: Optional[torch.dtype]
) -> InputProducts:
    """Input products (with the bias) of packed rows `[start, end)` of `inputs` `(2, rows, dim)`."""

    def products(start: int, end: int) -> torch.Tensor:
        rows = inputs[:, start:end]
        if compute_dtype is None:
            return torch.baddbmm(bias, rows, input_weight)
        return batched_matmul(rows, input_weight, compute_dtype) + bias

    return products


def distinct_input_products(
    distinct_inputs: torch.Tensor,
    row_index: torch.Tensor,
    input_weight: torch.Tensor,
    bias: torch.Tensor,
    compute_dtype: Optional[torch.dtype],
) -> InputProducts:
    """
    Input products when many packed rows share an input (the same word, `<S>`, `</S>`):
    computed once per distinct input `(num_distinct, dim)`, then gathered for packed rows
    `[start, end)` by `row_index` `(2, rows)` (the distinct input of each direction's rows).
    """
    num_distinct = distinct_inputs.size(0)
    num_directions = input_weight.size(0)
    per_direction = distinct_inputs.unsqueeze(0).expand(num_directions, -1, -1)
    if compute_dtype is None:
        distinct_products = torch.baddbmm(bias, per_direction, input_weight)
    else:
        distinct_products = batched_matmul(per_direction, input_weight, compute_dtype) + bias
    flat_products = distinct_products.reshape(num_directions * num_distinct, distinct_products.size(-1))
    # Each direction's rows follow those of the one before.
    flat_index = row_index + num_distinct * torch.arange(num_directions, device=row_index.device).unsqueeze(1)

    def products(start: int, end: int) -> torch.Tensor:
        rows = flat_index[:, start:end].reshape(-1)
        return flat_products.index_select(0, rows).view(num_directions, end - start, -1)

    return products


def run_layer(
    input_products: InputProducts,
    batch_sizes: List[int],
    step_products: "StepProducts",
    cell_dim: int,
    cell_clip: float,
    proj_clip: float,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> torch.Tensor:
    """
    Both directions of one layer, stacked on the first dimension (0 forward, 1 backward), or
    one of them (a first dimension of 1): `input_products` and `step_products` say which.

    Rows are packed time-major, `batch_sizes[t]` rows at step `t`, each step's rows a prefix
    of the previous step's; the backward direction's rows hold each sequence reversed, so both
    directions have the same `batch_sizes` and every step is one batched product for the two.
    `input_products(start, end)` gives the input products plus bias `(directions, end - start,
    4 * cell_dim)` of packed rows `[start, end)`; it is called for blocks of about
    `block_rows` rows.  `step_products` does each step's recurrent and projection products.
    Gate columns are ordered input, forget, output, memory.  Returns the packed projected
    states `(directions, num_rows, hidden_dim)`.  Clip values of 0 mean no clipping, as in
    allennlp.  The gates and the memory cells are float32 whatever the precision of the products.
    """
    outputs: List[torch.Tensor] = []
    state = torch.empty(0)
    memory = torch.empty(0)
    block = torch.empty(0)
    block_start = 0
    block_end = 0
    offset = 0
    for step, active in enumerate(batch_sizes):
        if offset >= block_end:
            # Input products of the next time steps, in one product.
            block_start = offset
            block_end = offset
            for later in batch_sizes[step:]:
                block_end += later
                if block_end - block_start >= block_rows:
                    break
            block = input_products(block_start, block_end)
        step_inputs = block[:, offset - block_start : offset - block_start + active]
        if step == 0:
            # The state starts at zero: the recurrent product is zero.
            gates = step_inputs
        else:
            state = state[:, :active]
            memory = memory[:, :active]
            gates = step_products.recurrent(state, step_inputs)
        sigmoid_gates = torch.sigmoid(gates[:, :, : 3 * cell_dim])
        memory_init = torch.tanh(gates[:, :, 3 * cell_dim :])
        input_gate = sigmoid_gates[:, :, :cell_dim]
        forget_gate = sigmoid_gates[:, :, cell_dim : 2 * cell_dim]
        output_gate = sigmoid_gates[:, :, 2 * cell_dim :]
        if step == 0:
            memory = input_gate * memory_init
        else:
            memory = torch.addcmul(input_gate * memory_init, forget_gate, memory)
        if cell_clip:
            memory = torch.clamp(memory, -cell_clip, cell_clip)
        state = step_products.project(output_gate * torch.tanh(memory))
        if proj_clip:
            state = torch.clamp(state, -proj_clip, proj_clip)
        outputs.append(state)
        offset += active
    return torch.cat(outputs, dim=1)


class StatelessElmoLstm(torch.nn.Module):
    """
    The forward and backward stacked LSTMs of an ELMo biLM, with weights from a bilm-tf
    weight file (see `weights_io`).

    # Parameters

    options : `Dict[str, Any]`
        The ELMo options (`lstm` section).
    weights : `Dict[str, numpy.ndarray]`
        The datasets of the weight file, from `weights_io.read_weights`.
    requires_grad : `bool`, optional (default = `False`)
        Whether the parameters are trained.
    block_rows : `int`, optional (default = `512`)
        Packed rows whose input products are computed in one matrix product.
    onednn_packed_weights : `bool`, optional (default = `True`)
        On CPU with frozen float32 weights of at least `ONEDNN_MIN_WEIGHT_ELEMENTS` per
        recurrent matrix, run the per-step products on oneDNN-packed copies of the recurrent
        and projection weights (see `step_products`), when this PyTorch has the op.  Costs a
        second copy of those weights (160 MB for the 4096-cell model).
    """

    def __init__(
        self,
        options: Dict[str, Any],
        weights: Dict[str, numpy.ndarray],
        requires_grad: bool = False,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        onednn_packed_weights: bool = True,
    ) -> None:
        super().__init__()
        lstm = options["lstm"]
        self.num_layers = int(lstm["n_layers"])
        self.hidden_dim = int(lstm["projection_dim"])
        self.cell_dim = int(lstm["dim"])
        # allennlp clips only when the value is truthy.
        self.cell_clip = float(lstm.get("cell_clip") or 0.0)
        self.proj_clip = float(lstm.get("proj_clip") or 0.0)
        self.block_rows = block_rows
        self.onednn_packed_weights = onednn_packed_weights

        def parameter(array: numpy.ndarray) -> torch.nn.Parameter:
            tensor = torch.from_numpy(numpy.ascontiguousarray(array, dtype=numpy.float32))
            return torch.nn.Parameter(tensor, requires_grad=requires_grad)

        input_weights, recurrent_weights, biases, projections = [], [], [], []
        for layer in range(self.num_layers):
            # Per layer, forward and backward stacked: one batched product runs both.
            layer_weights: List[List[numpy.ndarray]] = [[], [], [], []]
            for direction in (0, 1):
                group = lstm_cell_group(direction, layer)
                w_0 = weights[f"{group}/W_0"]
                bias = weights[f"{group}/B"].copy()
                # bilm-tf adds 1 to the forget gate (third block) at run time.
                bias[2 * self.cell_dim : 3 * self.cell_dim] += 1.0
                layer_weights[0].append(_tf_gates_to_ours(w_0[: self.hidden_dim], self.cell_dim))
                layer_weights[1].append(_tf_gates_to_ours(w_0[self.hidden_dim :], self.cell_dim))
                layer_weights[2].append(_tf_gates_to_ours(bias, self.cell_dim)[None, :])
                layer_weights[3].append(weights[f"{group}/W_P_0"])
            for stacked, arrays in zip((input_weights, recurrent_weights, biases, projections), layer_weights):
                stacked.append(parameter(numpy.stack(arrays)))
        # Index: the layer; first dimension of each: the direction (0 forward, 1 backward).
        self.input_weights = torch.nn.ParameterList(input_weights)
        self.recurrent_weights = torch.nn.ParameterList(recurrent_weights)
        self.biases = torch.nn.ParameterList(biases)
        self.projection_weights = torch.nn.ParameterList(projections)
        self._low_precision_weights: Dict[torch.dtype, List[Tuple[torch.Tensor, ...]]] = {}
        self._packed_step_products: Dict[Tuple[type, int], StepProducts] = {}
        self._warned_no_int8 = False

    def _weights(self, layer: int, compute_dtype: Optional[torch.dtype]) -> Tuple[torch.Tensor, ...]:
        """Input, recurrent, bias and projection weights of `layer`; the matrices in
        `compute_dtype` when given (cast once and kept while the weights are frozen)."""
        weights = (
            self.input_weights[layer],
            self.recurrent_weights[layer],
            self.biases[layer],
            self.projection_weights[layer],
        )
        if compute_dtype is None:
            return weights
        if any(w.requires_grad for w in weights):
            # Weights that may be trained invalidate any kept copy.
            self._low_precision_weights.pop(compute_dtype, None)
            return tuple(w if k == 2 else w.to(compute_dtype) for k, w in enumerate(weights))
        copies = self._low_precision_weights.setdefault(compute_dtype, [])
        if not copies:
            for i in range(self.num_layers):
                frozen = (self.input_weights[i], self.recurrent_weights[i], self.biases[i], self.projection_weights[i])
                copies.append(tuple(w if k == 2 else w.to(compute_dtype) for k, w in enumerate(frozen)))
        return copies[layer]

    def clear_weight_copies(self) -> None:
        """Forget reduced-precision and packed weight copies (after the weights changed or moved)."""
        self._low_precision_weights = {}
        self._packed_step_products = {}

    def _step_products(
        self, layer: int, recurrent_weight: torch.Tensor, projection_weight: torch.Tensor, compute_dtype
    ) -> StepProducts:
        """The per-step products of `layer`: int8 for `torch.qint8`, oneDNN-packed for large
        frozen float32 weights on CPU, plain batched products otherwise.  Packed kinds copy the
        weights, so they are built once and kept while the weights are frozen."""
        frozen = not (recurrent_weight.requires_grad or projection_weight.requires_grad)
        if compute_dtype == torch.qint8:
            if recurrent_weight.device.type != "cpu":
                raise ValueError("int8 products run on CPU only: use bfloat16 or float16 on a GPU")
            if not frozen:
                raise ValueError("int8 products need a frozen biLM (requires_grad false)")
            if not int8_step_products_available():
                # A config made on an x86 machine still runs where the ops are missing.
                if not self._warned_no_int8:
                    logger.warning(
                        "int8 products are not available in this PyTorch (fbgemm's quantized ops, "
                        "x86 CPUs only): running the float32 products instead"
                    )
                    self._warned_no_int8 = True
                compute_dtype = None
        if compute_dtype == torch.qint8:
            kind = Int8StepProducts
        elif (
            self.onednn_packed_weights
            and compute_dtype is None
            and frozen
            and recurrent_weight.device.type == "cpu"
            and recurrent_weight.dtype == torch.float32
            and recurrent_weight[0].numel() >= ONEDNN_MIN_WEIGHT_ELEMENTS
            and onednn_packing_available()
        ):
            kind = OneDnnStepProducts
        else:
            if not frozen:
                # Weights that may be trained invalidate any packed copy.
                self._packed_step_products = {}
            return BatchedStepProducts(recurrent_weight, projection_weight, compute_dtype)
        if (kind, layer) not in self._packed_step_products:
            self._packed_step_products[kind, layer] = kind(recurrent_weight, projection_weight)
        return self._packed_step_products[kind, layer]

    def _worth_deduplicating(self, num_distinct: int, num_rows: int) -> bool:
        products_bytes = num_distinct * 2 * 4 * self.cell_dim * 4
        return num_distinct <= 0.8 * num_rows and products_bytes <= DISTINCT_PRODUCTS_MAX_BYTES

    def forward(
        self,
        inputs: torch.Tensor,
        layout: PackedLayout,
        compute_dtype: Optional[torch.dtype] = None,
        distinct_inputs: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> List[torch.Tensor]:
        """
        `inputs`: `(batch_size * timesteps, hidden_dim)` token embeddings, flattened.
        `distinct_inputs`, optional: `(distinct embeddings (num_distinct, hidden_dim), index of
        each flat position's embedding among them (batch_size * timesteps,))`; when given, the
        first layer's input products are computed once per distinct embedding.
        Returns, per layer, the packed outputs `(2, num_rows, hidden_dim)`: forward in the row
        order of `layout.forward_index`, backward in that of `layout.backward_index`.
        """
        num_rows = layout.forward_index.size(0)
        packed_index = torch.stack([layout.forward_index, layout.backward_index])
        # On CPU the directions run one after the other: a step then reads one direction's
        # recurrent and projection weights (40 MB for the 4096-cell model) instead of both, which
        # stay in the CPU's cache from step to step (1.2-1.4x faster per step for the few rows
        # still running); on GPU one batched product per step for both is faster.
        directions = [slice(0, 2)] if inputs.is_cuda else [slice(0, 1), slice(1, 2)]
        outputs: List[torch.Tensor] = []
        layer_inputs = torch.empty(0)
        # int8 applies to the memory-bound per-step products only: input products stay float32.
        matrix_dtype = None if compute_dtype == torch.qint8 else compute_dtype
        for layer in range(self.num_layers):
            input_weight, recurrent_weight, bias, projection_weight = self._weights(layer, matrix_dtype)
            step_products = self._step_products(layer, recurrent_weight, projection_weight, compute_dtype)
            deduplicate = (
                layer == 0
                and distinct_inputs is not None
                and self._worth_deduplicating(distinct_inputs[0].size(0), num_rows)
            )
            if layer == 0 and not deduplicate:
                layer_inputs = inputs.index_select(0, packed_index.view(-1)).view(2, num_rows, inputs.size(-1))
            direction_outputs = []
            for part in directions:
                if deduplicate:
                    distinct, distinct_of_position = distinct_inputs
                    input_products = distinct_input_products(
                        distinct, distinct_of_position[packed_index[part]], input_weight[part], bias[part], matrix_dtype
                    )
                else:
                    input_products = packed_input_products(layer_inputs[part], input_weight[part], bias[part], matrix_dtype)
                direction_outputs.append(
                    run_layer(
                        input_products,
                        layout.batch_sizes,
                        step_products.select(part),
                        self.cell_dim,
                        self.cell_clip,
                        self.proj_clip,
                        self.block_rows,
                    )
                )
            layer_outputs = direction_outputs[0] if len(direction_outputs) == 1 else torch.cat(direction_outputs)
            if layer > 0:
                # Residual connection between layers.
                layer_outputs = layer_outputs + layer_inputs
            outputs.append(layer_outputs)
            layer_inputs = layer_outputs
        return outputs
