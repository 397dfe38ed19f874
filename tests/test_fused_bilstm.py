"""
The `fused_bilstm` encoder against allennlp's `lstm` (packed `torch.nn.LSTM`) with the same
weights: outputs, input gradients and parameter gradients agree within float32 rounding, for
batches with every length from empty to full, with and without oneDNN.
"""
import pytest
import torch
from allennlp.common import Params
from allennlp.modules.seq2seq_encoders import LstmSeq2SeqEncoder, Seq2SeqEncoder

from ner_elmo.modules.seq2seq_encoders.fused_bilstm import reverse_within_lengths

# Float32 products summed in another order (oneDNN's kernels against PyTorch's step loop).
TOLERANCE = 1e-5


def _pair(num_layers=2, dropout=0.5):
    torch.manual_seed(0)
    stock = LstmSeq2SeqEncoder(7, 5, num_layers=num_layers, dropout=dropout, bidirectional=True)
    ours = Seq2SeqEncoder.from_params(
        Params({"type": "fused_bilstm", "input_size": 7, "hidden_size": 5, "num_layers": num_layers, "dropout": dropout})
    )
    ours.load_state_dict(stock.state_dict())
    return stock, ours


def _batch(lengths, steps=None):
    torch.manual_seed(1)
    lengths = torch.tensor(lengths)
    steps = steps or int(lengths.max())
    mask = torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)
    return torch.randn(len(lengths), steps, 7), mask


def test_reverse_within_lengths_reverses_tokens_keeps_padding_and_is_its_own_inverse():
    mask = torch.tensor([[True, True, True, False], [True, False, False, False], [False] * 4])
    index = reverse_within_lengths(mask)
    assert index.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3], [0, 1, 2, 3]]
    assert torch.equal(index.gather(1, index), torch.arange(4).expand(3, 4))


@pytest.mark.parametrize("mkldnn", [True, False], ids=["onednn", "plain"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_outputs_and_gradients_match_allennlps_lstm(mkldnn, num_layers):
    stock, ours = _pair(num_layers=num_layers)
    stock.eval(), ours.eval()
    inputs, mask = _batch([6, 1, 4, 0, 6, 3])
    weights = torch.randn(6, 6, 10)
    with torch.backends.mkldnn.flags(enabled=mkldnn):
        results = []
        for encoder in (stock, ours):
            encoder.zero_grad()
            x = inputs.clone().requires_grad_()
            output = encoder(x, mask)
            (output * weights).sum().backward()
            results.append((output.detach(), x.grad, {n: p.grad.clone() for n, p in encoder.named_parameters()}))
    (stock_out, stock_grad, stock_params), (our_out, our_grad, our_params) = results
    assert our_out.shape == (6, 6, 10) and ours.get_output_dim() == 10 and ours.get_input_dim() == 7
    assert torch.all(our_out[~mask] == 0)
    assert (our_out - stock_out).abs().max() < TOLERANCE
    assert (our_grad - stock_grad).abs().max() < TOLERANCE
    assert stock_params.keys() == our_params.keys()
    for name in stock_params:
        assert (our_params[name] - stock_params[name]).abs().max() < TOLERANCE, name


def test_a_sentence_is_encoded_the_same_alone_and_padded_in_a_batch():
    _, ours = _pair()
    ours.eval()
    inputs, mask = _batch([3, 6])
    batched = ours(inputs, mask)
    alone = ours(inputs[:1, :3], mask[:1, :3])
    assert (batched[0, :3] - alone[0]).abs().max() < TOLERANCE


def test_dropout_between_layers_only_while_training():
    _, ours = _pair(dropout=0.5)
    inputs, mask = _batch([5, 5])
    ours.eval()
    assert torch.equal(ours(inputs, mask), ours(inputs, mask))
    ours.train()
    torch.manual_seed(3)
    first = ours(inputs, mask)
    torch.manual_seed(3)
    assert torch.equal(first, ours(inputs, mask))
    torch.manual_seed(4)
    assert not torch.equal(first, ours(inputs, mask))


def test_weights_load_either_way_and_stock_config_is_an_override_away():
    stock, ours = _pair()
    assert list(stock.state_dict()) == list(ours.state_dict())
    overridden = Seq2SeqEncoder.from_params(
        Params({"type": "lstm", "bidirectional": True, "input_size": 7, "hidden_size": 5, "num_layers": 2, "dropout": 0.5})
    )
    overridden.load_state_dict(ours.state_dict())
    stock.eval(), overridden.eval()
    inputs, mask = _batch([4, 2])
    assert torch.equal(stock(inputs, mask), overridden(inputs, mask))
