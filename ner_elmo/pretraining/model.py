"""
The trainable biLM of bilm-tf (Peters et al. 2018), with its parameters kept in the bilm-tf
HDF5 layout (`ner_elmo.modules.elmo.hdf5_layout`), so export is a copy and continued pretraining
a load.

* Character CNN over the 50 shifted byte ids of `ner_elmo.modules.elmo.char_ids` (row 0 of the
  character table is the all-zero padding row that allennlp adds; it never trains), max-pooled
  then activated, `n_highway` highway layers (`carry * relu(x W_t) + (1 - carry) * x`, carry
  bias initialised to -2), and a linear projection to `projection_dim`.
* Forward and backward LSTMs with a cell of `dim` projected to `projection_dim`, cell and
  projection clipping, the skip connection into every layer but the first, tensorflow's gate
  order (input, memory, forget, output) and its forget bias of +1 added at run time.
* Dropout as bilm-tf applies it in training: on every LSTM layer's input (before the skip
  connection adds it) and on the top layer's output before the softmax.

`BiLm.forward` runs one training window of each direction from carried states; `BiLm.layers`
computes what allennlp's `_ElmoBiLm` returns for whole sentences (same numbers), for checks.
"""
import math
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy
import torch
from torch import nn

from ner_elmo.modules.elmo import char_ids
from ner_elmo.modules.elmo.hdf5_layout import expected_datasets, lstm_cell_group

# One direction's carried state: per layer (h, c), h of size projection_dim, c of size dim.
LayerState = Tuple[torch.Tensor, torch.Tensor]
DirectionState = List[LayerState]


class CharacterEncoder(nn.Module):
    """Token embeddings from character ids: embedding, CNN, highways, projection."""

    def __init__(self, options: Dict[str, Any]) -> None:
        super().__init__()
        cnn = options["char_cnn"]
        self.filters = [(int(width), int(number)) for width, number in cnn["filters"]]
        self.activation = cnn["activation"]
        self.max_characters = int(cnn.get("max_characters_per_token", char_ids.MAX_WORD_LENGTH))
        char_dim = int(cnn["embedding"]["dim"])
        n_filters = sum(number for _, number in self.filters)
        projection_dim = int(options["lstm"]["projection_dim"])
        # Stored rows: ids 1 .. n_characters - 1 (id 0, padding, is a fixed zero row).
        self.char_embed = nn.Parameter(torch.empty(int(cnn["n_characters"]) - 1, char_dim))
        self.conv_weights = nn.ParameterList(
            [nn.Parameter(torch.empty(1, width, char_dim, number)) for width, number in self.filters]
        )
        self.conv_biases = nn.ParameterList([nn.Parameter(torch.empty(number)) for _, number in self.filters])
        n_highway = int(cnn.get("n_highway") or 0)
        self.highway_transform_weights = nn.ParameterList(
            [nn.Parameter(torch.empty(n_filters, n_filters)) for _ in range(n_highway)]
        )
        self.highway_transform_biases = nn.ParameterList(
            [nn.Parameter(torch.empty(n_filters)) for _ in range(n_highway)]
        )
        self.highway_carry_weights = nn.ParameterList(
            [nn.Parameter(torch.empty(n_filters, n_filters)) for _ in range(n_highway)]
        )
        self.highway_carry_biases = nn.ParameterList(
            [nn.Parameter(torch.empty(n_filters)) for _ in range(n_highway)]
        )
        self.projection_weight = nn.Parameter(torch.empty(n_filters, projection_dim))
        self.projection_bias = nn.Parameter(torch.empty(projection_dim))

    def named_arrays(self) -> Iterator[Tuple[str, nn.Parameter]]:
        """(HDF5 dataset name, parameter) pairs."""
        yield "char_embed", self.char_embed
        for i in range(len(self.filters)):
            yield f"CNN/W_cnn_{i}", self.conv_weights[i]
            yield f"CNN/b_cnn_{i}", self.conv_biases[i]
        for k in range(len(self.highway_carry_weights)):
            yield f"CNN_high_{k}/W_transform", self.highway_transform_weights[k]
            yield f"CNN_high_{k}/b_transform", self.highway_transform_biases[k]
            yield f"CNN_high_{k}/W_carry", self.highway_carry_weights[k]
            yield f"CNN_high_{k}/b_carry", self.highway_carry_biases[k]
        yield "CNN_proj/W_proj", self.projection_weight
        yield "CNN_proj/b_proj", self.projection_bias

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        # bilm-tf's initialisers: uniform(-1, 1) characters; relu filters uniform(-0.05, 0.05),
        # tanh filters normal(0, 1/sqrt(width * char_dim)); highways and projection normal with
        # variance 1/fan_in, carry bias -2, other biases 0.
        self.char_embed.uniform_(-1.0, 1.0, generator=generator)
        for weight, bias in zip(self.conv_weights, self.conv_biases):
            if self.activation == "relu":
                weight.uniform_(-0.05, 0.05, generator=generator)
            else:
                _, width, char_dim, _ = weight.shape
                weight.normal_(0.0, math.sqrt(1.0 / (width * char_dim)), generator=generator)
            bias.zero_()
        for parameters in zip(
            self.highway_carry_weights,
            self.highway_carry_biases,
            self.highway_transform_weights,
            self.highway_transform_biases,
        ):
            carry_weight, carry_bias, transform_weight, transform_bias = parameters
            std = math.sqrt(1.0 / carry_weight.shape[0])
            carry_weight.normal_(0.0, std, generator=generator)
            carry_bias.fill_(-2.0)
            transform_weight.normal_(0.0, std, generator=generator)
            transform_bias.zero_()
        self.projection_weight.normal_(0.0, math.sqrt(1.0 / self.projection_weight.shape[0]), generator=generator)
        self.projection_bias.zero_()

    def forward(self, ids: torch.Tensor, trim: bool = True) -> torch.Tensor:
        """
        `ids`: `(n, max_characters)` shifted character ids of `n` real tokens (no all-zero rows)
        -> `(n, projection_dim)`.

        With `trim`, the convolutions only run over the first `longest + widest filter`
        characters: every window further right covers padding only and gives the same value
        for every token, which one such window already contributes to the max-pool, so the
        result is the same as over all 50 characters (allennlp's computation).
        """
        if trim and ids.shape[0] > 0:
            padding = char_ids.PADDING_CHARACTER + 1
            longest = int((ids != padding).sum(dim=1).max())
            widest = max(width for width, _ in self.filters)
            ids = ids[:, : min(ids.shape[1], longest + widest)]
        table = torch.cat([self.char_embed.new_zeros(1, self.char_embed.shape[1]), self.char_embed])
        embedded = nn.functional.embedding(ids, table).transpose(1, 2)  # (n, char_dim, chars)
        activation = torch.relu if self.activation == "relu" else torch.tanh
        pooled = []
        for weight, bias in zip(self.conv_weights, self.conv_biases):
            kernel = weight[0].permute(2, 1, 0)  # (number, char_dim, width)
            convolved = nn.functional.conv1d(embedded, kernel, bias)
            pooled.append(activation(convolved.max(dim=-1).values))
        x = torch.cat(pooled, dim=-1)
        for parameters in zip(
            self.highway_carry_weights,
            self.highway_carry_biases,
            self.highway_transform_weights,
            self.highway_transform_biases,
        ):
            carry_weight, carry_bias, transform_weight, transform_bias = parameters
            carry = torch.sigmoid(torch.addmm(carry_bias, x, carry_weight))
            transform = torch.relu(torch.addmm(transform_bias, x, transform_weight))
            x = carry * transform + (1.0 - carry) * x
        return torch.addmm(self.projection_bias, x, self.projection_weight)


class LstmCellWithProjection(nn.Module):
    """
    One LSTM layer of one direction in bilm-tf's layout: `W_0` `(input + projection, 4 * dim)`
    (rows for the input first, then for the recurrent state; gate columns i, j, f, o), `B`
    `(4 * dim)` without the forget bias of 1, `W_P_0` `(dim, projection)`.
    """

    def __init__(self, input_dim: int, dim: int, projection_dim: int,
                 cell_clip: Optional[float], proj_clip: Optional[float]) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.dim = dim
        self.projection_dim = projection_dim
        # allennlp clips only when the value is truthy (0 and null mean no clipping).
        self.cell_clip = float(cell_clip) if cell_clip else None
        self.proj_clip = float(proj_clip) if proj_clip else None
        self.W_0 = nn.Parameter(torch.empty(input_dim + projection_dim, 4 * dim))
        self.B = nn.Parameter(torch.empty(4 * dim))
        self.W_P_0 = nn.Parameter(torch.empty(dim, projection_dim))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        # tensorflow's LSTMCell default: Glorot-uniform kernels, zero bias.
        for weight in (self.W_0, self.W_P_0):
            limit = math.sqrt(6.0 / (weight.shape[0] + weight.shape[1]))
            weight.uniform_(-limit, limit, generator=generator)
        self.B.zero_()

    def zero_state(self, rows: int, device=None) -> LayerState:
        return (
            torch.zeros(rows, self.projection_dim, device=device or self.W_0.device),
            torch.zeros(rows, self.dim, device=device or self.W_0.device),
        )

    def forward(self, inputs: torch.Tensor, state: LayerState,
                lengths: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, LayerState]:
        """
        `inputs` `(rows, steps, input_dim)` from `state` -> outputs `(rows, steps, projection)`
        and the final state.  With `lengths`, row `r` stops after `lengths[r]` steps: its later
        outputs are zero and its final state is the one after its last step.
        """
        rows, steps, _ = inputs.shape
        # The input products of all steps at once (one large matrix product), with tensorflow's
        # forget bias of 1 folded into the bias, as allennlp folds it when loading.
        bias = self.B + self._forget_one()
        input_weight, recurrent_weight = self.W_0[: self.input_dim], self.W_0[self.input_dim:]
        if lengths is None:
            # Time-major: every step's slice of the buffers is contiguous.
            time_major = inputs.transpose(0, 1).reshape(steps * rows, -1)
            projected = torch.addmm(bias, time_major, input_weight).view(steps, rows, 4 * self.dim)
            outputs, h, c = _LstmSteps.apply(projected, state[0], state[1], recurrent_weight, self.W_P_0,
                                             self.cell_clip, self.proj_clip)
            return outputs.transpose(0, 1), (h, c)
        projected = torch.addmm(bias, inputs.reshape(rows * steps, -1), input_weight)
        projected = projected.view(rows, steps, 4 * self.dim)
        h, c = state
        outputs = []
        for t, step_input in enumerate(projected.unbind(1)):
            new_h, new_c = _step(step_input, h, c, recurrent_weight, self.W_P_0, self.cell_clip, self.proj_clip)
            running = (t < lengths).unsqueeze(1)
            new_h = torch.where(running, new_h, h)
            new_c = torch.where(running, new_c, c)
            outputs.append(new_h * running)
            h, c = new_h, new_c
        return torch.stack(outputs, dim=1), (h, c)

    def _forget_one(self) -> torch.Tensor:
        one = torch.zeros(4 * self.dim, dtype=self.B.dtype, device=self.B.device)
        one[2 * self.dim: 3 * self.dim] = 1.0
        return one


def _step(projected_t, h, c, recurrent_weight, projection, cell_clip, proj_clip):
    """One LSTM step (autograd-tracked): gates i, j, f, o; clipping as allennlp clips."""
    dim = c.shape[1]
    gates = torch.addmm(projected_t, h, recurrent_weight)
    i, j, f, o = gates.split(dim, dim=1)
    new_c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(j)
    if cell_clip is not None:
        new_c = new_c.clamp(-cell_clip, cell_clip)
    new_h = (torch.sigmoid(o) * torch.tanh(new_c)) @ projection
    if proj_clip is not None:
        new_h = new_h.clamp(-proj_clip, proj_clip)
    return new_h, new_c


class _LstmSteps(torch.autograd.Function):
    """
    The recurrence of `LstmCellWithProjection` over a window, time-major (`projected`
    `(steps, rows, 4 * dim)`), with a hand-written backward pass: autograd's per-step graph
    made every step allocate a full-window gradient buffer and accumulate small weight-gradient
    products; here each step writes into preallocated buffers and the weight gradients are two
    large matrix products over the whole window.  Same numbers as `_step` step after step
    (tested against autograd).
    """

    @staticmethod
    def forward(ctx, projected, h0, c0, recurrent_weight, projection, cell_clip, proj_clip):
        steps, rows, four_dim = projected.shape
        dim = four_dim // 4
        new = lambda *shape, dtype=projected.dtype: torch.empty(*shape, dtype=dtype, device=projected.device)  # noqa: E731
        hs, cs = new(steps + 1, rows, projection.shape[1]), new(steps + 1, rows, dim)
        hs[0], cs[0] = h0, c0
        sigmoids, candidates = new(steps, rows, four_dim), new(steps, rows, dim)
        tanh_cs, ms = new(steps, rows, dim), new(steps, rows, dim)
        c_masks = new(steps, rows, dim, dtype=torch.bool) if cell_clip is not None else None
        h_masks = new(steps, rows, projection.shape[1], dtype=torch.bool) if proj_clip is not None else None
        for t in range(steps):
            gates = torch.addmm(projected[t], hs[t], recurrent_weight)
            sigmoid = torch.sigmoid(gates, out=sigmoids[t])  # the j block goes unused
            torch.tanh(gates[:, dim: 2 * dim], out=candidates[t])
            c = torch.addcmul(sigmoid[:, 2 * dim: 3 * dim] * cs[t], sigmoid[:, :dim], candidates[t], out=cs[t + 1])
            if cell_clip is not None:
                # torch.clamp passes the gradient where -clip <= x <= clip: the same rule here.
                torch.le(c.abs(), cell_clip, out=c_masks[t])
                c.clamp_(-cell_clip, cell_clip)
            torch.tanh(c, out=tanh_cs[t])
            torch.mul(sigmoid[:, 3 * dim:], tanh_cs[t], out=ms[t])
            h = torch.mm(ms[t], projection, out=hs[t + 1])
            if proj_clip is not None:
                torch.le(h.abs(), proj_clip, out=h_masks[t])
                h.clamp_(-proj_clip, proj_clip)
        ctx.save_for_backward(hs, cs, sigmoids, candidates, tanh_cs, ms, c_masks, h_masks,
                              recurrent_weight, projection)
        return hs[1:].clone(), hs[steps].clone(), cs[steps].clone()

    @staticmethod
    def backward(ctx, grad_outputs, grad_h, grad_c):
        hs, cs, sigmoids, candidates, tanh_cs, ms, c_masks, h_masks, recurrent_weight, projection = ctx.saved_tensors
        steps, rows, dim = ms.shape
        dh = torch.zeros_like(hs[0]) if grad_h is None else grad_h.clone()
        dc = torch.zeros_like(cs[0]) if grad_c is None else grad_c.clone()
        d_gates = torch.empty_like(sigmoids)
        d_h_raw = torch.empty_like(hs[1:])
        projection_t, recurrent_t = projection.t(), recurrent_weight.t()
        for t in range(steps - 1, -1, -1):
            if grad_outputs is not None:
                dh = dh + grad_outputs[t]
            if h_masks is not None:
                dh = dh * h_masks[t]
            d_h_raw[t] = dh
            dm = dh @ projection_t
            sigmoid = sigmoids[t]
            i, f, o = sigmoid[:, :dim], sigmoid[:, 2 * dim: 3 * dim], sigmoid[:, 3 * dim:]
            tanh_c, candidate = tanh_cs[t], candidates[t]
            dc = dc + dm * o * (1.0 - tanh_c * tanh_c)
            if c_masks is not None:
                dc = dc * c_masks[t]
            d = d_gates[t]
            torch.mul(dc * candidate, i * (1.0 - i), out=d[:, :dim])
            torch.mul(dc * i, 1.0 - candidate * candidate, out=d[:, dim: 2 * dim])
            torch.mul(dc * cs[t], f * (1.0 - f), out=d[:, 2 * dim: 3 * dim])
            torch.mul(dm * tanh_c, o * (1.0 - o), out=d[:, 3 * dim:])
            dc = dc * f
            dh = d @ recurrent_t
        flat_gates = d_gates.view(steps * rows, 4 * dim)
        grad_recurrent = hs[:-1].reshape(steps * rows, -1).t() @ flat_gates
        grad_projection = ms.view(steps * rows, dim).t() @ d_h_raw.view(steps * rows, -1)
        return d_gates, dh, dc, grad_recurrent, grad_projection, None, None


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    return nn.functional.dropout(x, p, training) if p > 0 and training else x


class BiLm(nn.Module):
    """
    The bilm-tf biLM: a character encoder shared by a forward and a backward stack of
    `n_layers` LSTM layers.

    # Parameters

    options : `Dict[str, Any]`
        ELMo options (`char_cnn`, `lstm` sections), checked by the caller.
    dropout : `float`, optional (default = `0.1`)
        bilm-tf's training dropout (1 - keep_prob); only active in training mode.
    """

    def __init__(self, options: Dict[str, Any], dropout: float = 0.1) -> None:
        super().__init__()
        self.options = options
        self.dropout = dropout
        lstm = options["lstm"]
        self.projection_dim = int(lstm["projection_dim"])
        self.n_layers = int(lstm["n_layers"])
        self.char_encoder = CharacterEncoder(options)
        self.layers = nn.ModuleList()
        for _direction in (0, 1):
            self.layers.append(nn.ModuleList([
                LstmCellWithProjection(
                    self.projection_dim, int(lstm["dim"]), self.projection_dim,
                    lstm.get("cell_clip"), lstm.get("proj_clip"),
                )
                for _ in range(self.n_layers)
            ]))

    def named_arrays(self) -> Iterator[Tuple[str, nn.Parameter]]:
        """Every parameter with its HDF5 dataset name, in `expected_datasets` order."""
        yield from self.char_encoder.named_arrays()
        for direction in (0, 1):
            for layer, cell in enumerate(self.layers[direction]):
                group = lstm_cell_group(direction, layer)
                yield f"{group}/W_0", cell.W_0
                yield f"{group}/B", cell.B
                yield f"{group}/W_P_0", cell.W_P_0

    def reset_parameters(self, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.char_encoder.reset_parameters(generator)
        for direction in self.layers:
            for cell in direction:
                cell.reset_parameters(generator)

    @torch.no_grad()
    def load_arrays(self, arrays: Dict[str, numpy.ndarray], source: str) -> None:
        """Copy weights read by `hdf5_layout.read_weights` into the parameters."""
        for name, parameter in self.named_arrays():
            values = torch.as_tensor(numpy.asarray(arrays[name], dtype=numpy.float32))
            if tuple(values.shape) != tuple(parameter.shape):
                raise ValueError(
                    f"{source}: dataset {name!r} has shape {tuple(values.shape)}, "
                    f"the model needs {tuple(parameter.shape)}"
                )
            parameter.copy_(values)

    def zero_state(self, rows: int, device=None) -> List[DirectionState]:
        return [[cell.zero_state(rows, device) for cell in direction] for direction in self.layers]

    def run_direction(self, direction: int, embedded: torch.Tensor, state: DirectionState,
                      lengths: Optional[torch.Tensor] = None) -> Tuple[List[torch.Tensor], DirectionState]:
        """Every layer's output (skip connections included) of one direction, and its states."""
        x = embedded
        outputs, new_state = [], []
        for layer, cell in enumerate(self.layers[direction]):
            x_in = _dropout(x, self.dropout, self.training)
            y, layer_state = cell(x_in, state[layer], lengths)
            if layer > 0:
                y = y + x_in
            outputs.append(y)
            new_state.append(layer_state)
            x = y
        return outputs, new_state

    def forward(self, type_char_ids: torch.Tensor, forward_types: torch.Tensor,
                backward_types: torch.Tensor, state: List[DirectionState]
                ) -> Tuple[torch.Tensor, torch.Tensor, List[DirectionState]]:
        """
        One training window.  `type_char_ids` `(n_types, 50)`: the distinct tokens of the batch
        (each goes through the CNN once); `forward_types`, `backward_types` `(rows, steps)`:
        indices into them, the backward window being the reversed text.  Returns the top
        layer's outputs of each direction after dropout, `(rows, steps, projection_dim)`, and
        the new states, detached (truncated back-propagation).
        """
        embedded = self.char_encoder(type_char_ids)
        tops, new_states = [], []
        for direction, types in ((0, forward_types), (1, backward_types)):
            outputs, direction_state = self.run_direction(direction, embedded[types], state[direction])
            tops.append(_dropout(outputs[-1], self.dropout, self.training))
            new_states.append([(h.detach(), c.detach()) for h, c in direction_state])
        return tops[0], tops[1], new_states

    def layers_of(self, sentence_char_ids: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """
        What allennlp's `_ElmoBiLm` returns for a batch from zero states: `sentence_char_ids`
        `(batch, length, 50)` as `batch_to_char_ids` makes them (no sentence marks, all-zero
        rows for padding) -> `n_layers + 1` activations `(batch, length + 2, 2 * projection)`
        (the token layer twice, then each LSTM layer's forward and backward outputs) and the
        mask `(batch, length + 2)`, the marks `<S>`, `</S>` included.
        """
        batch, length, chars = sentence_char_ids.shape
        device = sentence_char_ids.device
        lengths = (sentence_char_ids > 0).any(dim=-1).sum(dim=1) + 2
        total = length + 2
        ids = sentence_char_ids.new_zeros(batch, total, chars)
        positions = torch.arange(total, device=device)
        mask = positions.unsqueeze(0) < lengths.unsqueeze(1)
        ids[:, 1:-1] = sentence_char_ids
        ids[:, 0] = torch.tensor(char_ids.BOS_CHAR_IDS, device=device)
        eos_position = (lengths - 1).tolist()
        for row, position in enumerate(eos_position):
            ids[row, position] = torch.tensor(char_ids.EOS_CHAR_IDS, device=device)
        flat_ids = ids[mask]
        embedded = sentence_char_ids.new_zeros(batch, total, self.projection_dim, dtype=torch.float32)
        embedded = embedded.to(self.char_encoder.projection_weight.dtype)
        embedded[mask] = self.char_encoder(flat_ids)
        # Backward: each row reversed within its own length.
        reverse_index = (lengths.unsqueeze(1) - 1 - positions.unsqueeze(0)).clamp(min=0)
        reversed_embedded = embedded.gather(1, reverse_index.unsqueeze(-1).expand_as(embedded)) * mask.unsqueeze(-1)
        state = self.zero_state(batch, device)
        forward_outputs, _ = self.run_direction(0, embedded, state[0], lengths)
        backward_outputs, _ = self.run_direction(1, reversed_embedded, state[1], lengths)
        activations = [torch.cat([embedded, embedded], dim=-1) * mask.unsqueeze(-1)]
        for forward_output, backward_output in zip(forward_outputs, backward_outputs):
            backward_output = backward_output.gather(1, reverse_index.unsqueeze(-1).expand_as(backward_output))
            activations.append(torch.cat([forward_output, backward_output], dim=-1) * mask.unsqueeze(-1))
        return activations, mask


def check_layout(model: BiLm) -> None:
    """The parameters match `expected_datasets` of the model's options, name for name."""
    expected = expected_datasets(model.options)
    ours = {name: tuple(parameter.shape) for name, parameter in model.named_arrays()}
    assert ours == expected, (ours, expected)
