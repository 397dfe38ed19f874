"""
A cache of frozen-biLM layer activations, one entry per sentence, so that a frozen ELMo runs
once per distinct sentence instead of once per sentence per epoch.

Only torch, numpy and the standard library are used here;
`ner_elmo.modules.token_embedders.ner_elmo` (the registered "ner_elmo" token embedder)
wires it in.

How an entry is found
---------------------
A key is `"<namespace>/<sentence digest>"`:

* the namespace (`cache_namespace`) hashes everything that decides the activations and the
  entry format: every parameter and buffer of the biLM module as it is when the cache is used
  (names, dtypes, shapes and bytes), the options file's text, the biLM class, the selected
  layers, the output size, the storage dtype and `CACHE_FORMAT_VERSION`.  Hashing the loaded
  tensors rather than the weight file's name or date means a changed weight file, a model
  archive whose state dict replaces the weights, or a dtype cast can never reach an entry made
  with other weights.  It costs one pass over the weights (about a second for the 93.6M
  parameters of the original ELMo) whenever the embedder's tensors are (re)loaded or moved.
* the sentence digest hashes the sentence's character-id rows trimmed to its length.

What an entry holds
-------------------
A 2-d array `(length + 2, width)`: the selected layers, sentence marks included, concatenated
along the last axis, in the storage dtype.  Layer 0 of an ELMo biLM is the character-CNN token
embedding concatenated with itself; when the two halves are equal it is stored once (the entry
is then narrower by `output_dim // 2`) and expanded again on reading.  Entries are decoded the
same way whether they were just computed or found, so a sentence's embedding never depends on
whether it was a hit.

Stores
------
`MemoryActivationStore` keeps entries in an LRU bounded in bytes; `DiskActivationStore` writes
one `.npy` file per sentence under `<directory>/<namespace>/` (written to a temporary name and
renamed by `ner_elmo.common.atomic_write`, so a reader never sees half a file).  Both return
exactly the array that was stored.
"""
import hashlib
import logging
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy
import torch

from ner_elmo.common.atomic_write import atomic_open

logger = logging.getLogger(__name__)

#: Part of every namespace: bump it when the entry layout changes.
CACHE_FORMAT_VERSION = 1

#: Storage dtypes; float16 halves memory at a cost measured in `token_embedders.ner_elmo` (see its docstring).
CACHE_DTYPES = {"float32": numpy.float32, "float16": numpy.float16}

# Bytes charged per memory entry on top of its array (key string, array header, LRU node),
# so that `max_bytes` bounds what the process really holds, not just the payload.
ENTRY_OVERHEAD_BYTES = 256

_KEY_PATTERN = re.compile(r"^[0-9a-f]{16,128}/[0-9a-f]{16,128}$")

BiLmOutput = Dict[str, Any]


def _update_with_bytes(digest: "hashlib._Hash", data: Union[bytes, str]) -> None:
    # Length-prefixed, so that ("ab", "c") and ("a", "bc") hash differently.
    if isinstance(data, str):
        data = data.encode("utf-8")
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data)


def module_fingerprint(module: torch.nn.Module, *extras: Union[bytes, str]) -> str:
    """
    A hex digest of every parameter and buffer of `module` (names, dtypes, shapes, values)
    and of `extras` (e.g. the options file's text and the biLM class name).
    """
    digest = hashlib.blake2b(digest_size=20)
    for extra in extras:
        _update_with_bytes(digest, extra)
    named_tensors = list(module.named_parameters()) + [
        ("buffer:" + name, buffer) for name, buffer in module.named_buffers()
    ]
    for name, tensor in named_tensors:
        values = tensor.detach().to("cpu").contiguous().reshape(-1)
        _update_with_bytes(digest, f"{name}|{values.dtype}|{tuple(tensor.shape)}")
        digest.update(values.view(torch.uint8).numpy().data)
    return digest.hexdigest()


def sentence_lengths(char_ids: Union[torch.Tensor, numpy.ndarray]) -> numpy.ndarray:
    """
    The number of tokens of each sentence of a `(batch, timesteps, 50)` character-id batch:
    a token is present when any of its ids is non-zero, and padding must be on the right.
    """
    if isinstance(char_ids, torch.Tensor):
        char_ids = char_ids.detach().to("cpu").numpy()
    if char_ids.ndim != 3:
        raise ValueError(f"expected character ids of shape (batch, timesteps, 50), got {tuple(char_ids.shape)}")
    # numpy, not torch: tiny reductions through torch's thread pool cost more than they compute.
    present = (char_ids > 0).any(axis=-1)
    lengths = present.sum(axis=-1)
    prefix = numpy.arange(char_ids.shape[1])[None, :] < lengths[:, None]
    if not numpy.array_equal(prefix, present):
        rows = numpy.flatnonzero((prefix != present).any(axis=1)).tolist()
        raise ValueError(
            f"character ids of batch rows {rows} have an all-zero (padding) token before a real "
            "token: padding must come after the last token of a sentence"
        )
    return lengths


def sentence_digest(char_ids_row: numpy.ndarray) -> str:
    """Hex digest of one sentence's character ids, `(length, 50)`, already trimmed."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(numpy.asarray(char_ids_row.shape, dtype=numpy.int64).tobytes())
    digest.update(numpy.ascontiguousarray(char_ids_row, dtype=numpy.int32).tobytes())
    return digest.hexdigest()


class ActivationStore:
    """Where entries live: `get` returns exactly what `put` stored, or `None`."""

    def get(self, key: str) -> Optional[numpy.ndarray]:
        raise NotImplementedError

    def put(self, key: str, entry: numpy.ndarray) -> None:
        raise NotImplementedError

    @staticmethod
    def check_key(key: str) -> None:
        if not _KEY_PATTERN.match(key):
            raise ValueError(f"not an activation cache key: {key!r}")


class MemoryActivationStore(ActivationStore):
    """
    Entries in memory, least recently used evicted first once the arrays (plus
    `ENTRY_OVERHEAD_BYTES` each) would exceed `max_bytes`.  An entry larger than the whole
    bound is not kept.  Stored arrays are made read-only so no caller can alter an entry.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.evictions = 0
        self._entries: "OrderedDict[str, numpy.ndarray]" = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    @staticmethod
    def _charge(entry: numpy.ndarray) -> int:
        return entry.nbytes + ENTRY_OVERHEAD_BYTES

    def get(self, key: str) -> Optional[numpy.ndarray]:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: numpy.ndarray) -> None:
        self.check_key(key)
        charge = self._charge(entry)
        if charge > self.max_bytes:
            return
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.nbytes -= self._charge(previous)
        entry.flags.writeable = False
        self._entries[key] = entry
        self.nbytes += charge
        while self.nbytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.nbytes -= self._charge(evicted)
            self.evictions += 1

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0


class DiskActivationStore(ActivationStore):
    """
    One `.npy` file per entry, at `<directory>/<namespace>/<sentence digest>.npy`.  Files are
    written under a temporary name and renamed into place, so concurrent writers and crashes
    never leave a partial entry.  There is no size bound: delete a namespace directory (or the
    whole directory) to reclaim space.  An unreadable file is reported and treated as a miss.
    """

    def __init__(self, directory: Union[str, os.PathLike]) -> None:
        self.directory = Path(directory).expanduser()
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        self.check_key(key)
        namespace, digest = key.split("/")
        return self.directory / namespace / f"{digest}.npy"

    def get(self, key: str) -> Optional[numpy.ndarray]:
        path = self.path(key)
        try:
            return numpy.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as error:
            logger.warning("ELMo activation cache: ignoring unreadable entry %s (%s)", path, error)
            return None

    def put(self, key: str, entry: numpy.ndarray) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not durable: an entry a crash loses is a miss, and an fsync per sentence costs ms.
        with atomic_open(path, "wb", durable=False) as stream:
            numpy.save(stream, entry, allow_pickle=False)


class ElmoActivationCache:
    """
    Runs a frozen biLM through a per-sentence cache.

    `activations(char_ids, run_bilm, fingerprint)` looks up each sentence of the batch, runs
    `run_bilm` once on the distinct misses (as one sub-batch trimmed to their longest
    sentence, under `torch.no_grad()`), stores them, and returns what the biLM would return for
    the whole batch: `{"activations": [one (batch, timesteps + 2, output_dim) float32 tensor per
    selected layer], "mask": (batch, timesteps + 2) bool}`, zero at padding.  The result carries
    no gradient: use it only with a biLM whose parameters are frozen.

    # Parameters

    store : `ActivationStore`
        Where entries live.
    output_dim : `int`
        The biLM's output size (`get_output_dim()`).
    layers : `Sequence[int]`
        The biLM layers to keep (0 is the character-CNN token embedding).
    dtype : `str`, optional (default = `"float32"`)
        Storage dtype, a key of `CACHE_DTYPES`.  With `"float16"` an entry that would overflow
        is kept in float32 instead.
    """

    def __init__(
        self,
        store: ActivationStore,
        output_dim: int,
        layers: Sequence[int],
        dtype: str = "float32",
    ) -> None:
        if dtype not in CACHE_DTYPES:
            raise ValueError(f"cache dtype must be one of {sorted(CACHE_DTYPES)}, got {dtype!r}")
        if not layers or len(set(layers)) != len(layers) or min(layers) < 0:
            raise ValueError(f"layers must be distinct non-negative layer numbers, got {list(layers)}")
        self.store = store
        self.output_dim = int(output_dim)
        self.layers = tuple(int(layer) for layer in layers)
        self.dtype = dtype
        self.hits = 0
        self.misses = 0
        self._namespaces: Dict[str, str] = {}

    # A model copy (e.g. for a moving average) shares the entries: keys already say which
    # weights made them.  Pickling keeps the configuration and drops the entries.
    def __deepcopy__(self, memo: Dict[int, Any]) -> "ElmoActivationCache":
        return self

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        if isinstance(self.store, MemoryActivationStore):
            state["store"] = MemoryActivationStore(self.store.max_bytes)
        return state

    def namespace(self, fingerprint: str) -> str:
        """The key prefix for a biLM `fingerprint` (see `module_fingerprint`)."""
        namespace = self._namespaces.get(fingerprint)
        if namespace is None:
            digest = hashlib.blake2b(digest_size=16)
            for part in (
                f"format={CACHE_FORMAT_VERSION}",
                fingerprint,
                f"layers={self.layers}",
                f"output_dim={self.output_dim}",
                f"dtype={self.dtype}",
            ):
                _update_with_bytes(digest, part)
            namespace = digest.hexdigest()
            self._namespaces[fingerprint] = namespace
        return namespace

    def _encode(self, layer_rows: List[numpy.ndarray]) -> numpy.ndarray:
        parts = []
        half = self.output_dim // 2
        for layer, rows in zip(self.layers, layer_rows):
            if layer == 0 and half > 0 and numpy.array_equal(rows[:, :half], rows[:, half:]):
                parts.append(rows[:, :half])
            else:
                parts.append(rows)
        exact = numpy.concatenate(parts, axis=1).astype(numpy.float32, copy=False)
        with numpy.errstate(over="ignore"):
            entry = exact.astype(CACHE_DTYPES[self.dtype])
        if entry.dtype != exact.dtype and not numpy.isfinite(entry).all() and numpy.isfinite(exact).all():
            logger.warning("ELMo activation cache: an entry overflows %s; keeping it in float32", self.dtype)
            entry = numpy.array(exact)
        return entry

    def _decode(self, entry: numpy.ndarray, length: int) -> Optional[List[numpy.ndarray]]:
        """The layers of an entry as float32 `(length + 2, output_dim)` arrays; `None` if malformed."""
        full_width = len(self.layers) * self.output_dim
        halved = 0 in self.layers and entry.ndim == 2 and entry.shape[1] == full_width - self.output_dim // 2
        if entry.ndim != 2 or entry.shape[0] != length + 2 or not (halved or entry.shape[1] == full_width):
            return None
        layer_rows = []
        start = 0
        for layer in self.layers:
            width = self.output_dim // 2 if (layer == 0 and halved) else self.output_dim
            rows = entry[:, start : start + width].astype(numpy.float32)
            if width != self.output_dim:
                rows = numpy.concatenate([rows, rows], axis=1)
            layer_rows.append(rows)
            start += width
        return layer_rows

    def activations(
        self,
        char_ids: torch.Tensor,
        run_bilm: Callable[[torch.Tensor], BiLmOutput],
        fingerprint: str,
    ) -> BiLmOutput:
        cpu_ids = char_ids.detach().to("cpu").numpy()
        lengths = sentence_lengths(cpu_ids).tolist()
        namespace = self.namespace(fingerprint)
        keys = [
            f"{namespace}/{sentence_digest(cpu_ids[row, :length])}" for row, length in enumerate(lengths)
        ]

        decoded: Dict[str, List[numpy.ndarray]] = {}
        missing: Dict[str, int] = {}  # key -> the first batch row holding that sentence
        for row, key in enumerate(keys):
            if key in decoded or key in missing:
                continue
            entry = self.store.get(key)
            layer_rows = None if entry is None else self._decode(entry, lengths[row])
            if entry is not None and layer_rows is None:
                logger.warning("ELMo activation cache: entry %s has an unexpected shape; recomputing", key)
            if layer_rows is None:
                missing[key] = row
            else:
                decoded[key] = layer_rows
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)

        if missing:
            rows = list(missing.values())
            width = max(1, max(lengths[row] for row in rows))
            with torch.no_grad():
                output = run_bilm(char_ids[rows, :width])
            sub_mask = output["mask"].to("cpu")
            sub_layers = [output["activations"][layer].detach().to("cpu", torch.float32).numpy() for layer in self.layers]
            for position, (key, row) in enumerate(missing.items()):
                length = lengths[row]
                if int(sub_mask[position].sum()) != length + 2:
                    raise RuntimeError(
                        f"the biLM's mask covers {int(sub_mask[position].sum())} positions for a "
                        f"sentence of {length} tokens; expected {length + 2} (with <S> and </S>)"
                    )
                entry = self._encode([layer[position, : length + 2] for layer in sub_layers])
                self.store.put(key, entry)
                # Decode what was stored, so a sentence reads the same on a miss and on a hit.
                decoded[key] = self._decode(entry, length)

        batch_size, timesteps = char_ids.shape[:2]
        layers = numpy.zeros((len(self.layers), batch_size, timesteps + 2, self.output_dim), numpy.float32)
        for row, key in enumerate(keys):
            for layer, rows in enumerate(decoded[key]):
                layers[layer, row, : lengths[row] + 2] = rows
        mask = numpy.arange(timesteps + 2)[None, :] < (numpy.asarray(lengths) + 2)[:, None]
        device = char_ids.device
        activations = torch.from_numpy(layers).to(device)
        return {"activations": list(activations.unbind(0)), "mask": torch.from_numpy(mask).to(device)}
