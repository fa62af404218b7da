"""The semantic index in NumPy: per partition a float32 matrix of unit vectors, searched by dot product.

Small partitions (up to `FLAT_MAX` rows) are scanned in full. Larger ones are first filtered with 384-bit
SimHash codes (signs of projections on fixed random hyperplanes): the fraction of differing bits estimates
the angle between two vectors (E[bits] = angle / pi for any distribution), so a Hamming cut-off 4 standard
deviations above the one expected at the similarity threshold keeps every row that can clear it (a true
match is dropped with probability ~3e-5 at exactly the threshold, far less above it) and the survivors are
scored exactly. At 100k rows the filter reads 4.8 MB instead of the 154 MB of the matrix.

Rows are appended in order; expired rows are skipped by the search and dropped by `maintain`, which also
caps a partition at `max_entries` (oldest first).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

from pilothouse.gateway.cache.store import FloatArray, VectorMatch, VectorRecord

FLAT_MAX = 8192
SIMHASH_BITS = 384
_WORDS = SIMHASH_BITS // 64
_SIGMAS = 4.0
_MAX_RERANK = 4096
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


class VectorPartition:
    """The vectors of one (project, model, context) partition."""

    def __init__(self, dim: int, max_entries: int) -> None:
        self.dim = dim
        self.max_entries = max_entries
        self.n = 0
        cap = 1
        self._vecs: FloatArray = np.empty((cap, dim), dtype=np.float32)
        self._codes: CodeArray = np.empty((_WORDS, cap), dtype=np.uint64)  # word-major: one pass per word
        self._expires = np.empty(cap, dtype=np.float64)
        self._keys: list[str] = []
        self._texts: list[str] = []
        self.min_expires = math.inf  # cheap checks for `VectorIndex.maintain`
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

    def add(self, records: Iterable[VectorRecord]) -> None:
        batch = list(records)
        if not batch:
            return
        if self.n + len(batch) > self.max_entries:
            self.maintain(time.time())
            if self.n + len(batch) > self.max_entries:
                self._drop_oldest(self.n + len(batch) - self.max_entries)
        batch = batch[-self.max_entries :]
        self._reserve(len(batch))
        start, end = self.n, self.n + len(batch)
        matrix = np.stack([np.asarray(r.vector, dtype=np.float32).reshape(self.dim) for r in batch])
        self._vecs[start:end] = matrix
        self._codes[:, start:end] = simhash(matrix).T
        self._expires[start:end] = [r.expires_at for r in batch]
        self.min_expires = min(self.min_expires, min(r.expires_at for r in batch))
        self.max_expires = max(self.max_expires, max(r.expires_at for r in batch))
        self._keys.extend(r.key for r in batch)
        self._texts.extend(r.text for r in batch)
        self.n = end

    def search(self, query: FloatArray, *, limit: int, min_score: float, now: float) -> list[VectorMatch]:
        n = self.n
        if n == 0:
            return []
        q = np.asarray(query, dtype=np.float32).reshape(self.dim)
        if n <= FLAT_MAX:
            all_scores = self._vecs[:n] @ q
            rows = np.flatnonzero(all_scores >= min_score)
            scores = all_scores[rows]
        else:
            qcode = simhash(q[None, :])[0]
            distance = _popcount(self._codes[0, :n] ^ qcode[0]).astype(np.uint16)
            for w in range(1, _WORDS):
                distance += _popcount(self._codes[w, :n] ^ qcode[w])
            rows = np.flatnonzero(distance <= hamming_cutoff(min_score))
            if rows.size > _MAX_RERANK:
                rows = rows[np.argpartition(distance[rows], _MAX_RERANK)[:_MAX_RERANK]]
            scores = self._vecs[rows] @ q
            keep = scores >= min_score
            rows, scores = rows[keep], scores[keep]
        if rows.size == 0:
            return []
        order = np.argsort(-scores, kind="stable")
        found: list[VectorMatch] = []
        seen: set[str] = set()
        for i in order:
            row = int(rows[i])
            key = self._keys[row]
            if self._expires[row] <= now or key in seen:
                continue
            seen.add(key)
            found.append(VectorMatch(key=key, text=self._texts[row], score=float(scores[i])))
            if len(found) >= limit:
                break
        return found

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
        self._keys = [self._keys[int(r)] for r in rows]
        self._texts = [self._texts[int(r)] for r in rows]
        self.n = m
        self.min_expires = float(self._expires[:m].min()) if m else math.inf
        self.max_expires = float(self._expires[:m].max()) if m else -math.inf


class VectorIndex:
    """Partitions by name, created on first add. Holds at most `max_total` rows: beyond that the least
    recently used partitions are dropped whole (`on_evict` is told). `maintain` drops expired rows and
    partitions with nothing left."""

    def __init__(
        self,
        max_entries_per_partition: int,
        max_total: int = 1_000_000,
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        self.max_entries = max_entries_per_partition
        self.max_total = max_total
        self.on_evict = on_evict
        self.partitions: OrderedDict[str, VectorPartition] = OrderedDict()
        self._total = 0
        self._last_maintain = time.monotonic()

    def add(self, partition: str, records: Iterable[VectorRecord]) -> None:
        batch = list(records)
        if not batch:
            return
        part = self.partitions.get(partition)
        if part is None:
            part = VectorPartition(int(np.asarray(batch[0].vector).size), self.max_entries)
            self.partitions[partition] = part
        else:
            self.partitions.move_to_end(partition)
        before = part.n
        part.add(batch)
        self._total += part.n - before
        self.maybe_maintain()
        if self._total > self.max_total:
            self._evict(keep=partition)

    def search(self, partition: str, query: FloatArray, *, limit: int, min_score: float) -> list[VectorMatch]:
        part = self.partitions.get(partition)
        if part is None:
            return []
        self.partitions.move_to_end(partition)
        return part.search(query, limit=limit, min_score=min_score, now=time.time())

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

    def size(self) -> int:
        return self._total
