import torch
from allennlp.modules.seq2seq_encoders import Seq2SeqEncoder

from ner_elmo.modules.seq2seq_encoders.fused_bilstm import FusedBiLstmEncoder


@Seq2SeqEncoder.register("residual_bilstm")
class ResidualBiLstmEncoder(Seq2SeqEncoder):
    """
    Two stacked bidirectional LSTMs whose outputs are added: `h = lstm1(x) + lstm2(lstm1(x))`.
    This is the encoder of the Keras + TF-Hub ELMo NER tutorials (a `Bidirectional(LSTM)` whose
    output is added to a second one's). The skip connection lets the second layer learn a
    correction rather than a whole new representation.

    Registered as a `Seq2SeqEncoder` with name "residual_bilstm".

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
        self._first = FusedBiLstmEncoder(input_size, hidden_size)
        self._second = FusedBiLstmEncoder(2 * hidden_size, hidden_size)
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
