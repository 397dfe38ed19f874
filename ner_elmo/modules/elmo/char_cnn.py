"""
The ELMo character CNN: character embeddings, max-pooled convolutions of several widths,
highway layers and a linear projection, mapping each token's 50 character ids to its
context-independent embedding.  Same numbers as allennlp's `_ElmoCharacterEncoder`,
computed as one matrix product per filter width over character windows instead of
`Conv1d`, which is several times faster on CPU.
"""
from typing import Any, Dict

import numpy
import torch


class ElmoCharacterCnn(torch.nn.Module):
    """
    Token embeddings from character ids, with weights from a bilm-tf weight file.

    # Parameters

    options : `Dict[str, Any]`
        The ELMo options (`char_cnn` and `lstm.projection_dim` are used).
    weights : `Dict[str, numpy.ndarray]`
        The datasets of the weight file, from `weights_io.read_weights`.
    requires_grad : `bool`, optional (default = `False`)
        Whether the parameters are trained.
    token_chunk_size : `int`, optional (default = `128`)
        Tokens convolved at once; bounds the memory of the window products.
    """

    def __init__(
        self,
        options: Dict[str, Any],
        weights: Dict[str, numpy.ndarray],
        requires_grad: bool = False,
        token_chunk_size: int = 128,
    ) -> None:
        super().__init__()
        cnn = options["char_cnn"]
        self.max_characters = cnn.get("max_characters_per_token", 50)
        self.activation = cnn["activation"]
        self.filter_widths = [int(width) for width, _ in cnn["filters"]]
        self.filter_numbers = [int(number) for _, number in cnn["filters"]]
        if max(self.filter_widths) > self.max_characters:
            raise ValueError(
                f"filter width {max(self.filter_widths)} exceeds max_characters_per_token {self.max_characters}"
            )
        self.n_highway = int(cnn["n_highway"])
        self.output_dim = int(options["lstm"]["projection_dim"])
        self.token_chunk_size = token_chunk_size

        def parameter(array: numpy.ndarray) -> torch.nn.Parameter:
            tensor = torch.from_numpy(numpy.ascontiguousarray(array, dtype=numpy.float32))
            return torch.nn.Parameter(tensor, requires_grad=requires_grad)

        # Row 0 is the padding character id (0), always a zero vector, as in allennlp.
        char_embed = weights["char_embed"]
        self.char_embedding = parameter(
            numpy.concatenate([numpy.zeros((1, char_embed.shape[1]), numpy.float32), char_embed])
        )
        # W_cnn_i is (1, width, char_dim, number): flattened (width * char_dim, number) it
        # multiplies a window of `width` character embeddings laid end to end.
        self.filter_weights = torch.nn.ParameterList(
            [
                parameter(weights[f"CNN/W_cnn_{i}"][0].reshape(-1, number))
                for i, number in enumerate(self.filter_numbers)
            ]
        )
        self.filter_bias = parameter(
            numpy.concatenate([weights[f"CNN/b_cnn_{i}"] for i in range(len(self.filter_numbers))])
        )
        # One product per highway layer: [W_transform | W_carry].
        self.highway_weights = torch.nn.ParameterList(
            [
                parameter(
                    numpy.concatenate(
                        [weights[f"CNN_high_{k}/W_transform"], weights[f"CNN_high_{k}/W_carry"]], axis=1
                    )
                )
                for k in range(self.n_highway)
            ]
        )
        self.highway_biases = torch.nn.ParameterList(
            [
                parameter(
                    numpy.concatenate([weights[f"CNN_high_{k}/b_transform"], weights[f"CNN_high_{k}/b_carry"]])
                )
                for k in range(self.n_highway)
            ]
        )
        self.projection_weight = parameter(weights["CNN_proj/W_proj"])
        self.projection_bias = parameter(weights["CNN_proj/b_proj"])

    def get_output_dim(self) -> int:
        return self.output_dim

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        """
        `char_ids`: `(num_tokens, max_characters)` ids; returns `(num_tokens, output_dim)`.
        """
        if char_ids.size(0) <= self.token_chunk_size:
            return self._embed(char_ids)
        return torch.cat(
            [self._embed(chunk) for chunk in char_ids.split(self.token_chunk_size)], dim=0
        )

    def _embed(self, char_ids: torch.Tensor) -> torch.Tensor:
        num_tokens, num_characters = char_ids.shape
        # (num_tokens, max_characters, char_dim)
        characters = torch.nn.functional.embedding(char_ids, self.char_embedding)
        char_dim = characters.size(-1)
        pooled = []
        for width, number, weight in zip(self.filter_widths, self.filter_numbers, self.filter_weights):
            positions = num_characters - width + 1
            # Windows (num_tokens, positions, char_dim, width) -> (.., width * char_dim).
            windows = characters.unfold(1, width, 1).transpose(2, 3).reshape(-1, width * char_dim)
            convolved = torch.mm(windows, weight).view(num_tokens, positions, number)
            pooled.append(convolved.amax(dim=1))
        # The bias is constant over positions, so adding it after the max changes nothing.
        token_embedding = torch.cat(pooled, dim=-1) + self.filter_bias
        if self.activation == "relu":
            token_embedding = torch.relu(token_embedding)
        else:
            token_embedding = torch.tanh(token_embedding)

        for weight, bias in zip(self.highway_weights, self.highway_biases):
            projected = torch.addmm(bias, token_embedding, weight)
            transform, carry = projected.chunk(2, dim=-1)
            # bilm-tf: carry_gate * relu(transform) + (1 - carry_gate) * input, written the
            # way allennlp computes it (gate = sigmoid(-carry)) so the rounding matches.
            gate = torch.sigmoid(-carry)
            token_embedding = gate * token_embedding + (1 - gate) * torch.relu(transform)

        return torch.addmm(self.projection_bias, token_embedding, self.projection_weight)
