from allennlp.modules.seq2seq_encoders import Seq2SeqEncoder

from ner_elmo.modules.bilstm import FusedBiLstm, reverse_within_lengths

__all__ = ["FusedBiLstmEncoder", "reverse_within_lengths"]


@Seq2SeqEncoder.register("fused_bilstm")
class FusedBiLstmEncoder(FusedBiLstm, Seq2SeqEncoder):
    """
    `ner_elmo.modules.bilstm.FusedBiLstm` as an allennlp `Seq2SeqEncoder`: a stacked bidirectional
    LSTM that computes exactly what allennlp's `lstm` encoder computes, each direction of each
    layer one fused call on the padded batch (oneDNN on a CPU, cuDNN on a GPU) instead of
    PyTorch's step-by-step packed LSTM. The parameters have the names of allennlp's `lstm`
    encoder, so a model trained with either loads into the other.

    Registered as a `Seq2SeqEncoder` with name "fused_bilstm".

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
