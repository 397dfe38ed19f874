"""
A bounded least-recently-used cache of character-CNN token embeddings, keyed by the
token's row of character ids.  Word types repeat a lot in text ("the", ",", every
sentence's `<S>` and `</S>`), so once warm the CNN runs only for unseen words.

It is only correct while the CNN is frozen: `FastElmoBiLm` bypasses it whenever a CNN
parameter requires grad, and clears it whenever its parameters move or are reloaded.
A cached embedding is the one computed in the batch that first met the word; computed in
another batch, its last bits may differ (a matrix product's round-off depends on its shape
and on the CPU's kernels), within the tolerance `FastElmoBiLm` documents.
"""
from collections import OrderedDict
from typing import Callable, List, Tuple

import numpy
import torch


class CharacterEmbeddingCache:
    """
    Maps a token's character-id row to its embedding, keeping at most `capacity` rows.

    Embeddings live in one tensor (on the CNN's device) that grows by doubling up to
    `capacity` rows; the keys (the rows' bytes) and the recency order live in an
    `OrderedDict` from key to slot.

    # Parameters

    capacity : `int`
        Most word types kept; the least recently used are evicted first.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"cache capacity must be positive, got {capacity}")
        self.capacity = capacity
        self._slots: "OrderedDict[bytes, int]" = OrderedDict()
        self._storage: torch.Tensor = None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._slots)

    def clear(self) -> None:
        self._slots.clear()
        self._storage = None
        self.hits = 0
        self.misses = 0

    def embed(
        self, char_ids: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """
        Embeddings of the rows of `char_ids` `(num_tokens, max_characters)`, running
        `compute` (the CNN) once on the distinct rows that are not cached.
        """
        distinct, inverse = self.embed_distinct(char_ids, compute)
        return distinct.index_select(0, inverse)

    def embed_distinct(
        self, char_ids: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        The embeddings of the distinct rows of `char_ids` `(num_distinct, dim)` and, for each
        row, the index of its embedding among them `(num_tokens,)`.
        """
        num_tokens = char_ids.size(0)
        if num_tokens == 0:
            return compute(char_ids), char_ids.new_zeros(0)
        host_ids = char_ids.detach().to("cpu", torch.int16).numpy()
        row_bytes = host_ids.shape[1] * host_ids.dtype.itemsize
        buffer = numpy.ascontiguousarray(host_ids).tobytes()
        keys = [buffer[i * row_bytes : (i + 1) * row_bytes] for i in range(num_tokens)]

        # Distinct rows of this batch, and where each token's row is among them.
        distinct_index = {}
        inverse = numpy.empty(num_tokens, dtype=numpy.int64)
        first_rows: List[int] = []
        for i, key in enumerate(keys):
            j = distinct_index.get(key)
            if j is None:
                j = distinct_index[key] = len(first_rows)
                first_rows.append(i)
            inverse[i] = j

        hit_distinct: List[int] = []
        hit_slots: List[int] = []
        miss_distinct: List[int] = []
        for j, i in enumerate(first_rows):
            slot = self._slots.get(keys[i])
            if slot is None:
                miss_distinct.append(j)
            else:
                self._slots.move_to_end(keys[i])
                hit_distinct.append(j)
                hit_slots.append(slot)
        self.hits += len(hit_distinct)
        self.misses += len(miss_distinct)

        device = char_ids.device
        computed = None
        if miss_distinct:
            miss_rows = torch.as_tensor([first_rows[j] for j in miss_distinct], device=device)
            computed = compute(char_ids.index_select(0, miss_rows))
        dim = computed.size(1) if computed is not None else self._storage.size(1)
        dtype = computed.dtype if computed is not None else self._storage.dtype
        distinct = torch.empty(len(first_rows), dim, dtype=dtype, device=device)
        # Read the hits before inserting the misses: an insertion may evict one of them.
        if hit_distinct:
            distinct[torch.as_tensor(hit_distinct, device=device)] = self._storage[
                torch.as_tensor(hit_slots, device=device)
            ]
        if miss_distinct:
            distinct[torch.as_tensor(miss_distinct, device=device)] = computed
            self._insert([keys[first_rows[j]] for j in miss_distinct], computed.detach())
        return distinct, torch.from_numpy(inverse).to(device)

    def _insert(self, keys: List[bytes], embeddings: torch.Tensor) -> None:
        keys = keys[-self.capacity :]
        embeddings = embeddings[-self.capacity :]
        slots = []
        for key in keys:
            if len(self._slots) < self.capacity:
                slot = len(self._slots)
            else:
                _, slot = self._slots.popitem(last=False)
            self._slots[key] = slot
            slots.append(slot)
        needed = len(self._slots)
        if self._storage is None or self._storage.size(0) < needed:
            rows = min(self.capacity, max(needed, 2 * (0 if self._storage is None else self._storage.size(0)), 1024))
            storage = embeddings.new_empty(rows, embeddings.size(1))
            if self._storage is not None:
                storage[: self._storage.size(0)] = self._storage
            self._storage = storage
        self._storage[torch.as_tensor(slots, device=embeddings.device)] = embeddings

