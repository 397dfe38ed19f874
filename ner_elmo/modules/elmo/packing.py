"""
Time-major packing of a padded batch of variable-length sequences, for running an LSTM
over only the real positions.

Sequences are sorted longest first, so at every time step the sequences still running
are a prefix of that order and the active batch shrinks as sequences end.  The packed
rows of one time step are contiguous, so a block of time steps is a contiguous block of
rows: input products for many steps are one matrix product.

The backward direction packs every sequence reversed within its own length, so that it
runs with exactly the same loop (each sequence starts from its last real position, as
allennlp's backward `LstmCellWithProjection` does).
"""
from typing import List, NamedTuple

import torch


class PackedLayout(NamedTuple):
    """
    Where packed rows come from in the flattened `(batch_size * timesteps)` padded batch.

    `batch_sizes[t]`: sequences still running at step `t`.
    `forward_index[r]`, `backward_index[r]`: flat position of packed row `r` for the forward
    and the backward (reversed) direction.
    """

    batch_sizes: List[int]
    forward_index: torch.Tensor
    backward_index: torch.Tensor


def pack_by_length(lengths: torch.Tensor, timesteps: int) -> PackedLayout:
    """
    The packed layout of sequences with `lengths` `(batch_size,)` in a padded batch with
    `timesteps` columns.  Sequences of length 0 take no rows.
    """
    device = lengths.device
    batch_size = lengths.size(0)
    sorted_lengths, order = torch.sort(lengths, descending=True, stable=True)
    max_length = int(sorted_lengths[0]) if batch_size else 0
    steps = torch.arange(max_length, device=device)
    # (max_length, batch_size) in sorted order; time-major nonzero gives the packed order.
    active = steps.unsqueeze(1) < sorted_lengths.unsqueeze(0)
    step_of_row, sorted_row = active.nonzero(as_tuple=True)
    sequence = order[sorted_row]
    forward_index = sequence * timesteps + step_of_row
    backward_index = sequence * timesteps + (lengths[sequence] - 1 - step_of_row)
    batch_sizes = active.sum(dim=1).tolist()
    return PackedLayout(batch_sizes, forward_index, backward_index)
