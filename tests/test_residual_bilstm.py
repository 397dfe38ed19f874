import torch
from allennlp.common import Params
from allennlp.modules.seq2seq_encoders import Seq2SeqEncoder


def _encoder():
    torch.manual_seed(0)
    return Seq2SeqEncoder.from_params(Params({"type": "residual_bilstm", "input_size": 6, "hidden_size": 4}))


def test_output_is_first_layer_plus_second_layer():
    encoder = _encoder().eval()
    inputs = torch.randn(2, 5, 6)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    output = encoder(inputs, mask)
    first = encoder._first(inputs, mask)
    assert output.shape == (2, 5, 8)
    assert encoder.get_input_dim() == 6 and encoder.get_output_dim() == 8 and encoder.is_bidirectional()
    assert torch.allclose(output, first + encoder._second(first, mask))
    # Padding positions stay zero and do not change the real positions.
    assert torch.all(output[1, 3:] == 0)
    alone = encoder(inputs[1:, :3], mask[1:, :3])
    assert torch.allclose(alone[0], output[1, :3], atol=1e-6)
