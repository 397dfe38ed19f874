"""
The ELMo biLM's stacked LSTMs, stateless and packed: every call starts from zero state,
runs only the real positions of each sequence, and computes the input products of many
time steps as one matrix product.  The numbers are those of allennlp's `ElmoLstm` made
of `LstmCellWithProjection`s (memory cell clipped to `cell_clip`, projected state clipped
to `proj_clip`, each layer after the first adding its input to its output).
"""
from typing import Any, Dict, List, Optional, Tuple

import numpy
import torch

from ner_elmo.modules.elmo.packing import PackedLayout
from ner_elmo.modules.elmo.hdf5_layout import lstm_cell_group

# Rows of input products computed at once: enough for an efficient matrix product,
# few enough to bound memory (rows * 4 * cell_dim floats; 32 MB for the 4096-cell model).
DEFAULT_BLOCK_ROWS = 512


def _tf_gates_to_ours(array: numpy.ndarray, cell_dim: int) -> numpy.ndarray:
    """bilm-tf orders gate columns input, memory, forget, output; we use input, forget,
    output, memory so one sigmoid covers the first three."""
    i, j, f, o = (array[..., k * cell_dim : (k + 1) * cell_dim] for k in range(4))
    return numpy.ascontiguousarray(numpy.concatenate([i, f, o, j], axis=-1))


def run_lstm_direction(
    inputs: torch.Tensor,
    batch_sizes: List[int],
    input_weight: torch.Tensor,
    recurrent_weight: torch.Tensor,
    bias: torch.Tensor,
    projection_weight: torch.Tensor,
    cell_clip: float,
    proj_clip: float,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    compute_dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """
    One direction of one layer over packed `inputs` `(num_rows, input_dim)` (time-major,
    `batch_sizes[t]` rows at step `t`, each step's rows a prefix of the previous step's);
    returns the packed projected states `(num_rows, hidden_dim)`.  Clip values of 0 mean
    no clipping, as in allennlp.

    With `compute_dtype` (bfloat16 / float16) the matrix products run in that precision;
    the memory cell and the gates stay float32.  The weights must already be in that dtype.
    """
    cell_dim = projection_weight.size(0)
    low_precision = compute_dtype is not None
    outputs: List[torch.Tensor] = []
    state = torch.empty(0)
    memory = torch.empty(0)
    block = torch.empty(0)
    block_start = 0
    block_end = 0
    offset = 0
    for step, active in enumerate(batch_sizes):
        if offset >= block_end:
            # Input products (and the bias) for the next time steps, in one product.
            block_start = offset
            block_end = offset
            for later in batch_sizes[step:]:
                block_end += later
                if block_end - block_start >= block_rows:
                    break
            block_inputs = inputs[block_start:block_end]
            if low_precision:
                block = torch.mm(block_inputs.to(compute_dtype), input_weight).float() + bias
            else:
                block = torch.addmm(bias, block_inputs, input_weight)
        step_inputs = block[offset - block_start : offset - block_start + active]
        if step == 0:
            # The state starts at zero: the recurrent product is zero.
            gates = step_inputs
        else:
            state = state[:active]
            memory = memory[:active]
            if low_precision:
                gates = torch.mm(state.to(compute_dtype), recurrent_weight).float() + step_inputs
            else:
                gates = torch.addmm(step_inputs, state, recurrent_weight)
        sigmoid_gates = torch.sigmoid(gates[:, : 3 * cell_dim])
        memory_init = torch.tanh(gates[:, 3 * cell_dim :])
        input_gate = sigmoid_gates[:, :cell_dim]
        forget_gate = sigmoid_gates[:, cell_dim : 2 * cell_dim]
        output_gate = sigmoid_gates[:, 2 * cell_dim :]
        if step == 0:
            memory = input_gate * memory_init
        else:
            memory = input_gate * memory_init + forget_gate * memory
        if cell_clip:
            memory = torch.clamp(memory, -cell_clip, cell_clip)
        pre_projection = output_gate * torch.tanh(memory)
        if low_precision:
            state = torch.mm(pre_projection.to(compute_dtype), projection_weight).float()
        else:
            state = torch.mm(pre_projection, projection_weight)
        if proj_clip:
            state = torch.clamp(state, -proj_clip, proj_clip)
        outputs.append(state)
        offset += active
    return torch.cat(outputs, dim=0)


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
    """

    def __init__(
        self,
        options: Dict[str, Any],
        weights: Dict[str, numpy.ndarray],
        requires_grad: bool = False,
        block_rows: int = DEFAULT_BLOCK_ROWS,
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

        def parameter(array: numpy.ndarray) -> torch.nn.Parameter:
            tensor = torch.from_numpy(numpy.ascontiguousarray(array, dtype=numpy.float32))
            return torch.nn.Parameter(tensor, requires_grad=requires_grad)

        input_weights, recurrent_weights, biases, projections = [], [], [], []
        for layer in range(self.num_layers):
            for direction in (0, 1):
                group = lstm_cell_group(direction, layer)
                w_0 = weights[f"{group}/W_0"]
                bias = weights[f"{group}/B"].copy()
                # bilm-tf adds 1 to the forget gate (third block) at run time.
                bias[2 * self.cell_dim : 3 * self.cell_dim] += 1.0
                input_weights.append(parameter(_tf_gates_to_ours(w_0[: self.hidden_dim], self.cell_dim)))
                recurrent_weights.append(parameter(_tf_gates_to_ours(w_0[self.hidden_dim :], self.cell_dim)))
                biases.append(parameter(_tf_gates_to_ours(bias, self.cell_dim)))
                projections.append(parameter(weights[f"{group}/W_P_0"]))
        # Index layer * 2 + direction (0 forward, 1 backward).
        self.input_weights = torch.nn.ParameterList(input_weights)
        self.recurrent_weights = torch.nn.ParameterList(recurrent_weights)
        self.biases = torch.nn.ParameterList(biases)
        self.projection_weights = torch.nn.ParameterList(projections)
        self._low_precision_weights: Dict[torch.dtype, List[Tuple[torch.Tensor, ...]]] = {}

    def _weights(self, index: int, compute_dtype: Optional[torch.dtype]) -> Tuple[torch.Tensor, ...]:
        weights = (
            self.input_weights[index],
            self.recurrent_weights[index],
            self.biases[index],
            self.projection_weights[index],
        )
        if compute_dtype is None:
            return weights
        if any(w.requires_grad for w in weights):
            return tuple(w.to(compute_dtype) if k != 2 else w for k, w in enumerate(weights))
        # Frozen: cast once and keep the copies.
        if compute_dtype not in self._low_precision_weights:
            self._low_precision_weights[compute_dtype] = [
                tuple(
                    w.detach().to(compute_dtype) if k != 2 else w.detach()
                    for k, w in enumerate(
                        (self.input_weights[i], self.recurrent_weights[i], self.biases[i], self.projection_weights[i])
                    )
                )
                for i in range(2 * self.num_layers)
            ]
        return self._low_precision_weights[compute_dtype][index]

    def clear_weight_copies(self) -> None:
        """Forget reduced-precision weight copies (after the weights changed or moved)."""
        self._low_precision_weights = {}

    def forward(
        self,
        inputs: torch.Tensor,
        layout: PackedLayout,
        compute_dtype: Optional[torch.dtype] = None,
    ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """
        `inputs`: `(batch_size * timesteps, hidden_dim)` token embeddings, flattened.
        Returns, per layer, the packed `(forward, backward)` outputs, in the row orders of
        `layout.forward_index` and `layout.backward_index`.
        """
        forward_inputs = inputs.index_select(0, layout.forward_index)
        backward_inputs = inputs.index_select(0, layout.backward_index)
        outputs = []
        for layer in range(self.num_layers):
            layer_outputs = []
            for direction, direction_inputs in enumerate((forward_inputs, backward_inputs)):
                input_weight, recurrent_weight, bias, projection_weight = self._weights(
                    2 * layer + direction, compute_dtype
                )
                direction_outputs = run_lstm_direction(
                    direction_inputs,
                    layout.batch_sizes,
                    input_weight,
                    recurrent_weight,
                    bias,
                    projection_weight,
                    self.cell_clip,
                    self.proj_clip,
                    self.block_rows,
                    compute_dtype,
                )
                if layer > 0:
                    # Residual connection between layers.
                    direction_outputs = direction_outputs + direction_inputs
                layer_outputs.append(direction_outputs)
            forward_inputs, backward_inputs = layer_outputs
            outputs.append((forward_inputs, backward_inputs))
        return outputs
