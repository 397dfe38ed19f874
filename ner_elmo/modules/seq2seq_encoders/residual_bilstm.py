from allennlp.modules.seq2seq_encoders import Seq2SeqEncoder

from ner_elmo.modules.bilstm import ResidualBiLstm


@Seq2SeqEncoder.register("residual_bilstm")
class ResidualBiLstmEncoder(ResidualBiLstm, Seq2SeqEncoder):
    """
    `ner_elmo.modules.bilstm.ResidualBiLstm` as an allennlp `Seq2SeqEncoder`: two stacked
    bidirectional LSTMs whose outputs are added, `h = lstm1(x) + lstm2(lstm1(x))`, the encoder of
    the Keras + TF-Hub ELMo NER tutorials.

    Registered as a `Seq2SeqEncoder` with name "residual_bilstm".

    # Parameters

    input_size : `int`, required
        The dimension of the input vectors.
    hidden_size : `int`, required
        The LSTM state size per direction; the output dimension is `2 * hidden_size`.
    dropout : `float`, optional (default = `0.0`)
        Dropout on the first layer's output before it enters the second layer.
    """
