"""`ChunkTable`: the rows an embedded collection index serves, by slot.

A slot is a row number that never moves while the chunk lives (an HNSW graph and the BM25 index name chunks
by slot); a removed chunk frees its slot for the next one added. The table holds each chunk's unit vector (one
float32 matrix), text, metadata and the `MetadataColumns` that turn a `Filter` into a slot mask.

Persistence: `save(dir)` writes `vectors.npy` (the matrix) and `chunks.jsonl` (one line per slot: id, text,
metadata; `null` for a free slot) next to a `manifest.json` written last, so a half-written save is seen as
missing and the collection is rebuilt from the SQL store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pilothouse.rag.index.columns import BoolArray, MetadataColumns, SlotArray
from pilothouse.rag.types import IndexedChunk
from pilothouse.vectors.filters import Filter
from pilothouse.vectors.memory import unit_rows
from pilothouse.vectors.protocol import FloatArray, VectorHit

FORMAT = 1
MANIFEST = "manifest.json"
VECTORS_FILE = "vectors.npy"
CHUNKS_FILE = "chunks.jsonl"
_MASKS_KEPT = 8  # filter masks remembered per table generation (a hybrid query filters twice with one filter)


class ChunkTable:
    """Chunks by slot: unit vectors, texts, metadata and filter columns (see the module docstring)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.vectors: FloatArray = np.zeros((0, dim), dtype=np.float32)
        self.live: BoolArray = np.zeros(0, dtype=np.bool_)  # as long as `vectors`; slots past `capacity` False
        self.ids: list[str | None] = []
        self.texts: list[str] = []
        self.metadata: list[dict[str, Any]] = []
        self.slot_of: dict[str, int] = {}
        self.columns = MetadataColumns()
        self._free: list[int] = []
        self.generation = 0  # bumped on every change: dependants (BM25, HNSW) compare it
        self._masks: dict[Hashable, BoolArray] = {}  # Filter.key() -> allowed(), for `_masks_generation`
        self._masks_generation = -1

    def __len__(self) -> int:
        return len(self.slot_of)

    @property
    def capacity(self) -> int:
        return len(self.ids)

    def upsert(self, chunks: Sequence[IndexedChunk]) -> list[int]:
        """Store chunks (a chunk replacing one under the same id keeps its slot); returns the slots written.
        Validates every vector first: nothing of a refused batch is stored."""
        if not chunks:
            return []
        matrix = unit_rows((chunk.vector for chunk in chunks), self.dim)
        last: dict[str, int] = {chunk.id: i for i, chunk in enumerate(chunks)}  # a repeated id: the last wins
        written: list[int] = []
        for i, chunk in enumerate(chunks):
            if last[chunk.id] != i:
                continue
            slot = self.slot_of.get(chunk.id)
            if slot is not None:
                self.columns.discard(slot, self.metadata[slot])
            else:
                slot = self._take_slot()
            metadata = dict(chunk.metadata)
            self.vectors[slot] = matrix[i]
            self.live[slot] = True
            self.ids[slot] = chunk.id
            self.texts[slot] = chunk.text
            self.metadata[slot] = metadata
            self.slot_of[chunk.id] = slot
            self.columns.add(slot, metadata)
            written.append(slot)
        self.generation += 1
        return written

    def remove(self, ids: Iterable[str]) -> list[int]:
        """Drop chunks by id; returns the freed slots."""
        freed: list[int] = []
        for chunk_id in set(ids):
            slot = self.slot_of.pop(chunk_id, None)
            if slot is None:
                continue
            self.columns.discard(slot, self.metadata[slot])
            self.live[slot] = False
            self.ids[slot] = None
            self.texts[slot] = ""
            self.metadata[slot] = {}
            self.vectors[slot] = 0.0
            self._free.append(slot)
            freed.append(slot)
        if freed:
            self.generation += 1
        return freed

    def allowed(self, where: Filter | None) -> BoolArray:
        """Live slots matching `where` (all live slots for None or an empty filter), read-only: the mask of a
        filter is kept until the table changes, so the dense and keyword halves of a hybrid query (and the
        next queries of the same caller) build it once."""
        live = self.live[: self.capacity]
        if where is None or where.is_empty():
            return live
        if self._masks_generation != self.generation:
            self._masks.clear()
            self._masks_generation = self.generation
        key = where.key()
        mask = self._masks.get(key)
        if mask is None:
            mask = self.columns.mask(where, self.capacity) & live
            mask.flags.writeable = False  # shared by the searches that use the same filter until the next change
            if len(self._masks) >= _MASKS_KEPT:
                del self._masks[next(iter(self._masks))]
            self._masks[key] = mask
        return mask

    def hit(self, slot: int, score: float) -> VectorHit:
        return VectorHit(id=self.ids[slot] or "", score=score, text=self.texts[slot], metadata=self.metadata[slot])

    def query_vector(self, vector: Any) -> FloatArray:
        """A query as a unit vector of this table's dimension (DimensionMismatch or ValueError otherwise)."""
        query: FloatArray = unit_rows([vector], self.dim)[0]
        return query

    def live_slots(self) -> SlotArray:
        return np.flatnonzero(self.live[: self.capacity]).astype(np.int64)

    def _take_slot(self) -> int:
        if self._free:
            return self._free.pop()
        slot = len(self.ids)
        if slot >= self.vectors.shape[0]:
            grown = max(64, 2 * self.vectors.shape[0])
            vectors = np.zeros((grown, self.dim), dtype=np.float32)
            vectors[:slot] = self.vectors[:slot]
            live = np.zeros(grown, dtype=np.bool_)
            live[:slot] = self.live[:slot]
            self.vectors, self.live = vectors, live
        self.ids.append(None)
        self.texts.append("")
        self.metadata.append({})
        return slot

    # persistence

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        manifest = directory / MANIFEST
        manifest.unlink(missing_ok=True)
        np.save(directory / VECTORS_FILE, self.vectors[: self.capacity])
        with (directory / CHUNKS_FILE).open("w", encoding="utf-8") as out:
            for slot in range(self.capacity):
                chunk_id = self.ids[slot]
                row = None if chunk_id is None else [chunk_id, self.texts[slot], self.metadata[slot]]
                out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        _write_atomically(manifest, {"format": FORMAT, "dim": self.dim, "chunks": len(self), "slots": self.capacity})

    @classmethod
    def load(cls, directory: Path, dim: int) -> ChunkTable | None:
        """The table saved in `directory`, or None when there is none (or it is unreadable, or of another
        dimension): the caller rebuilds from the SQL store."""
        try:
            manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
            if manifest.get("format") != FORMAT or manifest.get("dim") != dim:
                return None
            vectors = np.load(directory / VECTORS_FILE, allow_pickle=False)
            rows = [json.loads(line) for line in (directory / CHUNKS_FILE).read_text(encoding="utf-8").splitlines()]
        except (OSError, ValueError):
            return None
        if vectors.shape != (len(rows), dim) or len(rows) != manifest.get("slots"):
            return None
        table = cls(dim)
        free: list[int] = []
        for slot, row in enumerate(rows):
            table._take_slot()
            if row is None:
                free.append(slot)
                continue
            chunk_id, text, metadata = row
            table.ids[slot] = chunk_id
            table.texts[slot] = text
            table.metadata[slot] = metadata
            table.slot_of[chunk_id] = slot
            table.live[slot] = True
            table.columns.add(slot, metadata)
        table._free = free[::-1]
        table.vectors[: len(rows)] = vectors.astype(np.float32, copy=False)
        return table


def _write_atomically(path: Path, payload: Mapping[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(temporary, path)
