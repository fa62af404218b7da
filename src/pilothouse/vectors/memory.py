"""`MemoryVectorIndex`: the `VectorIndex` in NumPy, per partition a float32 matrix of unit vectors searched by
dot product.

Vectors are normalised on the way in, so a dot product is their cosine. Small partitions (up to `FLAT_MAX`
rows) are scanned in full: exact. Larger ones are first filtered with 384-bit SimHash codes (signs of
projections on fixed random hyperplanes): the fraction of differing bits estimates the angle between two
vectors (E[bits] = angle / pi for any distribution), so a Hamming cut-off 4 standard deviations above the one
expected at `min_score` keeps every row that can clear it (a true match is dropped with probability ~3e-5 at
exactly the threshold, far less above it) and the survivors are scored exactly, at most `_MAX_RERANK` of
them (the nearest by Hamming distance). At 100k rows the filter reads 4.8 MB instead of the 154 MB of the
matrix. So a large partition searched with a high `min_score` (the semantic cache) is exact in practice; one
searched for a plain top-k over more than `_MAX_RERANK` candidates is approximate.

Rows are appended in order; expired rows are skipped by the search and dropped by `maintain`, which also
caps a partition at `max_per_partition` (oldest first). Beyond `max_total` rows the least recently used
partitions are dropped whole.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.vectors.filters import Filter
from pilothouse.vectors.protocol import DimensionMismatch, FloatArray, VectorHit, VectorItem

FLAT_MAX = 8192
SIMHASH_BITS = 384
_WORDS = SIMHASH_BITS // 64
_SIGMAS = 4.0
_MAX_RERANK = 1024
_PLANES_SEED = 0x5E3A471C

CodeArray = npt.NDArray[np.uint64]

_planes: dict[int, FloatArray] = {}


def _hyperplanes(dim: int) -> FloatArray:
    planes = _planes.get(dim)
    if planes is None:
        rng = np.random.default_rng(_PLANES_SEED)
        planes = rng.standard_normal((dim, SIMHASH_BITS)).astype(np.float32)
        _planes[dim] = planes
    return planes


def simhash(vectors: FloatArray) -> CodeArray:
    """(n, dim) float32 -> (n, 6) uint64 sign codes."""
    bits = (vectors @ _hyperplanes(vectors.shape[1])) > 0
    codes: CodeArray = np.packbits(bits, axis=1).view(np.uint64)
    return codes


if hasattr(np, "bitwise_count"):

    def _popcount(x: CodeArray) -> npt.NDArray[np.uint8]:
        result: npt.NDArray[np.uint8] = np.bitwise_count(x)
        return result

else:  # NumPy < 2.0
    _BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

    def _popcount(x: CodeArray) -> npt.NDArray[np.uint8]:
        per_byte = _BYTE_BITS[x.view(np.uint8)].reshape(*x.shape, 8)
        result: npt.NDArray[np.uint8] = per_byte.sum(axis=-1, dtype=np.uint8)
        return result


def hamming_cutoff(min_score: float) -> int:
    """The most differing bits a vector with similarity >= min_score shows, with 4 sigma to spare."""
    angle = math.acos(max(-1.0, min(1.0, min_score)))
    p = angle / math.pi
    return math.ceil(SIMHASH_BITS * p + _SIGMAS * math.sqrt(SIMHASH_BITS * p * (1.0 - p)))


def unit_rows(vectors: Iterable[Any], dim: int | None) -> FloatArray:
    """Vectors as an (n, dim) float32 matrix of unit rows (zero rows stay zero). Raises `DimensionMismatch`
    when a vector's size differs from `dim` (or, with `dim` None, from the first one's), ValueError for NaN or
    infinite values."""
    rows = [np.asarray(v, dtype=np.float32).reshape(-1) for v in vectors]
    if not rows:
        return np.empty((0, dim or 0), dtype=np.float32)
    expected = rows[0].size if dim is None else dim
    for row in rows:
        if row.size != expected:
            raise DimensionMismatch(row.size, expected)
    matrix = np.stack(rows)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):  # the slow path below sorts those out
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if not (np.isfinite(norms).all() and norms.all()):  # NaN or inf, zero, or squares out of float32's range
        scale = np.abs(matrix).max(axis=1, keepdims=True)
        if not np.isfinite(scale).all():
            raise ValueError("a vector has NaN or infinite values")
        matrix /= np.where(scale > 0, scale, 1.0)  # largest value 1 first: no square overflows or underflows
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        norms[norms == 0] = 1.0  # a zero vector stays zero (it scores 0)
    matrix /= norms
    return matrix


class VectorPartition:
    """The vectors of one partition, in the order they were added."""

    def __init__(self, dim: int, max_entries: int) -> None:
        self.dim = dim
        self.max_entries = max_entries
        self.n = 0
        cap = 1
        self._vecs: FloatArray = np.empty((cap, dim), dtype=np.float32)
        self._codes: CodeArray = np.empty((_WORDS, cap), dtype=np.uint64)  # word-major: one pass per word
        self._expires = np.empty(cap, dtype=np.float64)
        self._ids: list[str] = []
        self._texts: list[str] = []
        self._meta: list[Mapping[str, Any] | None] = []
        self.min_expires = math.inf  # cheap checks for `MemoryVectorIndex.maintain`
        self.max_expires = -math.inf

    def __len__(self) -> int:
        return self.n

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        cap = self._vecs.shape[0]
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        vecs = np.empty((cap, self.dim), dtype=np.float32)
        vecs[: self.n] = self._vecs[: self.n]
        codes = np.empty((_WORDS, cap), dtype=np.uint64)
        codes[:, : self.n] = self._codes[:, : self.n]
        expires = np.empty(cap, dtype=np.float64)
        expires[: self.n] = self._expires[: self.n]
        self._vecs, self._codes, self._expires = vecs, codes, expires

    def add(self, items: list[VectorItem], matrix: FloatArray) -> None:
        """Append `items`, whose vectors are the unit rows of `matrix` (see `unit_rows`)."""
        if not items:
            return
        if self.n + len(items) > self.max_entries:
            self.maintain(time.time())
            if self.n + len(items) > self.max_entries:
                self._drop_oldest(self.n + len(items) - self.max_entries)
        items, matrix = items[-self.max_entries :], matrix[-self.max_entries :]
        self._reserve(len(items))
        start, end = self.n, self.n + len(items)
        self._vecs[start:end] = matrix
        self._codes[:, start:end] = simhash(matrix).T
        expires = [item.expires_at for item in items]
        self._expires[start:end] = expires
        self.min_expires = min(self.min_expires, min(expires))
        self.max_expires = max(self.max_expires, max(expires))
        self._ids.extend(item.id for item in items)
        self._texts.extend(item.text for item in items)
        self._meta.extend(item.metadata for item in items)
        self.n = end

    def search(
        self, query: FloatArray, *, k: int, min_score: float, now: float, where: Filter | None = None
    ) -> list[VectorHit]:
        """Best first, each id once; `query` is a unit vector of this partition's dimension. `where` is applied
        before ranking (rows it rejects are never candidates), so k matching ids come back when k exist."""
        n = self.n
        if n == 0:
            return []
        allowed: npt.NDArray[np.intp] | None = None
        if where is not None and not where.is_empty():
            allowed = np.flatnonzero(np.fromiter((where.matches(m) for m in self._meta[:n]), np.bool_, count=n))
        if n <= FLAT_MAX or (allowed is not None and allowed.size <= FLAT_MAX):
            rows = np.arange(n) if allowed is None else allowed
            all_scores = self._vecs[:n] @ query if allowed is None else self._vecs[rows] @ query
            passing = np.flatnonzero(all_scores >= min_score)
            rows, scores = rows[passing], all_scores[passing]
        else:
            qcode = simhash(query[None, :])[0]
            distance = _popcount(self._codes[0, :n] ^ qcode[0]).astype(np.uint16)
            for w in range(1, _WORDS):
                distance += _popcount(self._codes[w, :n] ^ qcode[w])
            near = distance <= hamming_cutoff(min_score)
            if allowed is not None:
                inside = np.zeros(n, dtype=np.bool_)
                inside[allowed] = True
                near &= inside
            rows = np.flatnonzero(near)
            if rows.size > _MAX_RERANK:
                rows = rows[np.argpartition(distance[rows], _MAX_RERANK)[:_MAX_RERANK]]
            scores = self._vecs[rows] @ query
            keep = scores >= min_score
            rows, scores = rows[keep], scores[keep]
        if rows.size == 0:
            return []
        order = np.argsort(-scores, kind="stable")
        found: list[VectorHit] = []
        seen: set[str] = set()
        for i in order:
            row = int(rows[i])
            item_id = self._ids[row]
            if self._expires[row] <= now or item_id in seen:
                continue
            seen.add(item_id)
            score = min(1.0, max(-1.0, float(scores[i])))
            found.append(VectorHit(id=item_id, score=score, text=self._texts[row], metadata=self._meta[row]))
            if len(found) >= k:
                break
        return found

    def remove(self, ids: set[str]) -> int:
        """Drop every row of these ids; returns how many went."""
        keep = np.flatnonzero([item_id not in ids for item_id in self._ids])
        removed = self.n - int(keep.size)
        if removed:
            self._select(keep)
        return removed

    def expired(self, now: float) -> int:
        return int(np.count_nonzero(self._expires[: self.n] <= now))

    def maintain(self, now: float) -> None:
        """Drop expired rows and, beyond `max_entries`, the oldest."""
        if self.n == 0:
            return
        keep = np.flatnonzero(self._expires[: self.n] > now)
        if keep.size > self.max_entries:
            keep = keep[-self.max_entries :]
        if keep.size == self.n:
            return
        self._select(keep)

    def _drop_oldest(self, count: int) -> None:
        self._select(np.arange(min(count, self.n), self.n))

    def _select(self, rows: npt.NDArray[np.intp]) -> None:
        m = int(rows.size)
        self._vecs[:m] = self._vecs[rows]
        self._codes[:, :m] = self._codes[:, rows]
        self._expires[:m] = self._expires[rows]
        self._ids = [self._ids[int(r)] for r in rows]
        self._texts = [self._texts[int(r)] for r in rows]
        self._meta = [self._meta[int(r)] for r in rows]
        self.n = m
        self.min_expires = float(self._expires[:m].min()) if m else math.inf
        self.max_expires = float(self._expires[:m].max()) if m else -math.inf


class MemoryVectorIndex:
    """A `VectorIndex` held in this process. Partitions are created on first add; beyond `max_total` rows the
    least recently used partitions (added to or searched least recently) are dropped whole and `on_evict` is
    told their names. `maintain` (run every 30 s from `add`) drops expired rows and partitions with nothing
    left."""

    def __init__(
        self,
        *,
        dim: int | None = None,
        max_per_partition: int = 200_000,
        max_total: int = 1_000_000,
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        self.max_per_partition = max_per_partition
        self.max_total = max_total
        self.on_evict = on_evict
        self.partitions: OrderedDict[str, VectorPartition] = OrderedDict()
        self._initial_dim = dim
        self.dim = dim
        self._total = 0
        self._last_maintain = time.monotonic()

    def add(self, items: Iterable[VectorItem], *, partition: str = "") -> None:
        batch = list(items)
        if not batch:
            return
        matrix = unit_rows((item.vector for item in batch), self.dim)
        if self.dim is None:
            self.dim = matrix.shape[1]
        part = self.partitions.get(partition)
        if part is None:
            part = VectorPartition(matrix.shape[1], self.max_per_partition)
            self.partitions[partition] = part
        else:
            self.partitions.move_to_end(partition)
        before = part.n
        part.add(batch, matrix)
        self._total += part.n - before
        self.maybe_maintain()
        if self._total > self.max_total:
            self._evict(keep=partition)

    def remove(self, ids: Iterable[str], *, partition: str = "") -> int:
        part = self.partitions.get(partition)
        if part is None:
            return 0
        removed = part.remove(set(ids))
        self._total -= removed
        return removed

    def search(
        self,
        query: FloatArray,
        *,
        k: int,
        partition: str = "",
        min_score: float = -math.inf,
        where: Filter | None = None,
    ) -> list[VectorHit]:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if self.dim is None:
            return []  # nothing was ever added
        q = unit_rows([query], self.dim)[0]
        part = self.partitions.get(partition)
        if part is None:
            return []
        self.partitions.move_to_end(partition)
        return part.search(q, k=k, min_score=min_score, now=time.time(), where=where)

    def clear(self) -> None:
        self.partitions.clear()
        self._total = 0
        self.dim = self._initial_dim

    def __len__(self) -> int:
        return self._total

    def _evict(self, keep: str) -> None:
        for name in list(self.partitions):
            if self._total <= self.max_total:
                break
            if name == keep:
                continue
            self._total -= self.partitions.pop(name).n
            if self.on_evict is not None:
                self.on_evict(name)

    def maybe_maintain(self, every_s: float = 30.0) -> None:
        if time.monotonic() - self._last_maintain >= every_s:
            self.maintain()

    def maintain(self) -> None:
        """Drop expired rows (of a partition once a quarter of it has expired) and empty partitions."""
        self._last_maintain = time.monotonic()
        now = time.time()
        for name in list(self.partitions):
            part = self.partitions[name]
            if part.min_expires > now:
                continue  # nothing expired yet
            if part.max_expires <= now:
                del self.partitions[name]
                self._total -= part.n
                continue
            if part.expired(now) * 4 >= part.n:  # a quarter expired: worth a rewrite
                before = part.n
                part.maintain(now)
                self._total -= before - part.n
