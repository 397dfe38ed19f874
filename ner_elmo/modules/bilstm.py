"""
The bidirectional LSTMs of the taggers, in torch alone: the registered `fused_bilstm` and
`residual_bilstm` encoders are these modules with allennlp's `Seq2SeqEncoder` interface, and the
torch-only runtime (`ner_elmo.runtime`) runs them as they are.
"""
import torch


def reverse_within_lengths(mask: torch.BoolTensor) -> torch.LongTensor:
    """
    `(batch, steps)` time indices that reverse each sequence's first `length` steps and keep its
    padding in place. The map is its own inverse, so one index both reverses and restores.
    """
    steps = torch.arange(mask.size(1), device=mask.device).unsqueeze(0)
    lengths = mask.sum(1, keepdim=True)
    return torch.where(steps < lengths, lengths - 1 - steps, steps)


def _take_steps(sequences: torch.Tensor, index: torch.LongTensor) -> torch.Tensor:
    return sequences.gather(1, index.unsqueeze(2).expand(-1, -1, sequences.size(2)))


class FusedBiLstm(torch.nn.Module):
    """
    A stacked bidirectional LSTM that computes exactly what allennlp's `lstm` encoder (a
    `torch.nn.LSTM` over packed sequences) computes, but runs each direction of each layer as one
    call on the padded batch. On a CPU that call is oneDNN's fused LSTM, forward and backward;
    on a GPU it is cuDNN's. PyTorch's packed CPU LSTM instead runs step by step, and its backward
    zero-fills a whole-batch gradient for every step (quadratic in the sentence length); it was
    most of a training step's time (docs/lab/training-speed.md).

    Padding is handled without packing: the forward direction reads padding only after a
    sequence's last token, and the backward direction reads each sequence reversed within its own
    length, so its padding also comes last. Outputs at padded positions are zero, as allennlp's.

    The parameters are a `torch.nn.LSTM`'s under the same name as allennlp's `lstm` encoder
    (`_module.weight_ih_l0`, ...), so a model trained with either loads into the other.

    # Parameters

    input_size : `int`, required
        The dimension of the input vectors.
    hidden_size : `int`, required
        The LSTM state size per direction; the output dimension is `2 * hidden_size`.
    num_layers : `int`, optional (default = `1`)
        Stacked bidirectional layers; each reads the previous one's concatenated directions.
    dropout : `float`, optional (default = `0.0`)
        Dropout on each layer's output except the last, as `torch.nn.LSTM` applies it.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self._module = torch.nn.LSTM(
            input_size, hidden_size, num_layers=num_layers, dropout=dropout, bidirectional=True, batch_first=True
        )

    def forward(self, inputs: torch.Tensor, mask: torch.BoolTensor) -> torch.Tensor:
        lstm = self._module
        reverse = reverse_within_lengths(mask)
        initial = inputs.new_zeros(1, inputs.size(0), lstm.hidden_size)
        layer_input = inputs
        for layer in range(lstm.num_layers):
            if layer > 0:
                layer_input = torch.nn.functional.dropout(layer_input, lstm.dropout, self.training)
            outputs = []
            for suffix, index in (("", None), ("_reverse", reverse)):
                weights = [getattr(lstm, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                direction_input = layer_input if index is None else _take_steps(layer_input, index)
                output, _, _ = torch.lstm(
                    direction_input, (initial, initial), weights, True, 1, 0.0, self.training, False, True
                )
                outputs.append(output if index is None else _take_steps(output, index))
            layer_input = torch.cat(outputs, dim=2)
        return layer_input * mask.unsqueeze(2).to(layer_input.dtype)

    def get_input_dim(self) -> int:
        return self._module.input_size

    def get_output_dim(self) -> int:
        return 2 * self._module.hidden_size

    def is_bidirectional(self) -> bool:
        return True


class ResidualBiLstm(torch.nn.Module):
    """
    Two stacked bidirectional LSTMs whose outputs are added: `h = lstm1(x) + lstm2(lstm1(x))`.
    This is the encoder of the Keras + TF-Hub ELMo NER tutorials (a `Bidirectional(LSTM)` whose
    output is added to a second one's). The skip connection lets the second layer learn a
    correction rather than a whole new representation.

    # Parameters

    input_size : `int`, required
        The dimension of the input vectors.
    hidden_size : `int`, required
        The LSTM state size per direction; the output dimension is `2 * hidden_size`.
    dropout : `float`, optional (default = `0.0`)
        Dropout on the first layer's output before it enters the second layer.
    """

    def __init__(self, input_size: int, hidden_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self._first = FusedBiLstm(input_size, hidden_size)
        self._second = FusedBiLstm(2 * hidden_size, hidden_size)
        self._dropout = torch.nn.Dropout(dropout)

    def forward(self, inputs: torch.Tensor, mask: torch.BoolTensor) -> torch.Tensor:
        first = self._first(inputs, mask)
        second = self._second(self._dropout(first), mask)
        return first + second

    def get_input_dim(self) -> int:
        return self._first.get_input_dim()

    def get_output_dim(self) -> int:
        return self._first.get_output_dim()

    def is_bidirectional(self) -> bool:
        return True
