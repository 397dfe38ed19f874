"""
Windows of text for a stateful language model, as bilm-tf batches it.

Every sentence becomes `<S> w1 ... wn </S>`.  The batch has `rows` independent streams; each
row reads whole sentences one after the other (taking the next one from the epoch's order when
its current one is used up) and a window holds the next `steps` inputs of every row, so an
LSTM's state can be carried from one window to the next.  A sentence of `n` tokens gives `n + 1`
inputs: the forward LM reads `<S> w1 ... wn` and predicts `w1 ... wn </S>`, the backward LM
reads the reversed sentence `</S> wn ... w1` and predicts `wn ... w1 <S>`; both directions
therefore see the same sentences at the same positions of a window, which lets them share
the character CNN's work.  No position predicts across a sentence boundary.

In training the last window of an epoch that some row cannot fill is dropped (so every
window is full, as in bilm-tf); in evaluation every input is used, the unfilled positions of
the last windows masked.  The reading position is a small state (`state_dict`), so a run
resumes exactly where it stopped.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy

Segment = Tuple[int, int, int]  # (sentence, first input position, number of inputs)


class Window(NamedTuple):
    """Indices into the marked stream of one window: `(rows, steps)` each."""

    forward_inputs: numpy.ndarray
    forward_targets: numpy.ndarray
    backward_inputs: numpy.ndarray
    backward_targets: numpy.ndarray
    mask: numpy.ndarray  # bool: a real input (always all true in training)


class MarkedStream(NamedTuple):
    """Sentences with their marks, end to end: `tokens` int32 and each sentence's `starts`,
    `sizes` (tokens + 2)."""

    tokens: numpy.ndarray
    starts: numpy.ndarray
    sizes: numpy.ndarray

    @classmethod
    def build(cls, tokens: numpy.ndarray, lengths: numpy.ndarray, bos: int, eos: int) -> "MarkedStream":
        sizes = lengths.astype(numpy.int64) + 2
        starts = numpy.zeros(len(sizes), dtype=numpy.int64)
        numpy.cumsum(sizes[:-1], out=starts[1:])
        marked = numpy.empty(int(sizes.sum()), dtype=numpy.int32)
        marked[starts] = bos
        marked[starts + sizes - 1] = eos
        inner = numpy.ones(len(marked), dtype=bool)
        inner[starts] = False
        inner[starts + sizes - 1] = False
        marked[inner] = tokens
        return cls(marked, starts, sizes)

    @property
    def num_inputs(self) -> int:
        """Inputs (= targets) per direction in one pass: tokens plus one per sentence."""
        return int((self.sizes - 1).sum())


class StreamBatcher:
    """
    # Parameters

    stream : `MarkedStream`
    rows : `int`
        Streams in the (global) batch.
    steps : `int`
        Inputs per row and window (bilm-tf's `unroll_steps`, 20).
    seed : `int`, optional (default = `None`)
        Sentence order of epoch `e` is a permutation drawn from `(seed, e)`; `None` keeps the
        file order (evaluation).
    own_rows : `Sequence[int]`, optional (default = all)
        The rows this process computes (data parallelism); every process follows all rows'
        reading so that each knows which sentences its own rows get.
    """

    def __init__(self, stream: MarkedStream, rows: int, steps: int, seed: Optional[int] = None,
                 own_rows: Optional[Sequence[int]] = None) -> None:
        self.stream = stream
        self.rows = rows
        self.steps = steps
        self.seed = seed
        self.own_rows = list(range(rows)) if own_rows is None else list(own_rows)
        self.epoch = 0
        self._order = numpy.arange(len(stream.sizes))
        self._next = 0
        self._row_sentence = [-1] * rows
        self._row_position = [0] * rows

    def windows_per_epoch(self) -> int:
        """About how many full windows an epoch holds (exact up to the last few)."""
        return max(1, self.stream.num_inputs // (self.rows * self.steps))

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        count = len(self.stream.sizes)
        if self.seed is None:
            self._order = numpy.arange(count)
        else:
            self._order = numpy.random.default_rng([self.seed, epoch]).permutation(count)
        self._next = 0
        self._row_sentence = [-1] * self.rows
        self._row_position = [0] * self.rows

    def state_dict(self) -> Dict[str, object]:
        return {
            "epoch": self.epoch,
            "next": self._next,
            "row_sentence": list(self._row_sentence),
            "row_position": list(self._row_position),
        }

    def load_state_dict(self, state: Dict[str, object]) -> None:
        self.start_epoch(int(state["epoch"]))
        self._next = int(state["next"])
        self._row_sentence = [int(s) for s in state["row_sentence"]]
        self._row_position = [int(p) for p in state["row_position"]]

    def _fill(self, pad: bool) -> Optional[List[List[Segment]]]:
        sizes = self.stream.sizes
        segments: List[List[Segment]] = []
        placed = 0
        for row in range(self.rows):
            row_segments: List[Segment] = []
            filled = 0
            while filled < self.steps:
                sentence = self._row_sentence[row]
                left = int(sizes[sentence]) - 1 - self._row_position[row] if sentence >= 0 else 0
                if left <= 0:
                    if self._next >= len(self._order):
                        if not pad:
                            return None
                        break
                    self._row_sentence[row] = int(self._order[self._next])
                    self._row_position[row] = 0
                    self._next += 1
                    continue
                count = min(left, self.steps - filled)
                row_segments.append((sentence, self._row_position[row], count))
                self._row_position[row] += count
                filled += count
            placed += filled
            segments.append(row_segments)
        return segments if placed else None

    def next_window(self, pad: bool = False) -> Optional[Window]:
        """The next window of this process's rows, or `None` when the epoch is over."""
        segments = self._fill(pad)
        if segments is None:
            return None
        shape = (len(self.own_rows), self.steps)
        forward_inputs = numpy.zeros(shape, dtype=numpy.int64)
        backward_inputs = numpy.zeros(shape, dtype=numpy.int64)
        mask = numpy.zeros(shape, dtype=bool)
        starts, sizes = self.stream.starts, self.stream.sizes
        for i, row in enumerate(self.own_rows):
            column = 0
            for sentence, position, count in segments[row]:
                offsets = numpy.arange(position, position + count)
                forward_inputs[i, column:column + count] = starts[sentence] + offsets
                backward_inputs[i, column:column + count] = starts[sentence] + sizes[sentence] - 1 - offsets
                mask[i, column:column + count] = True
                column += count
        forward_targets = numpy.where(mask, forward_inputs + 1, 0)
        backward_targets = numpy.where(mask, backward_inputs - 1, 0)
        return Window(forward_inputs, forward_targets, backward_inputs, backward_targets, mask)
