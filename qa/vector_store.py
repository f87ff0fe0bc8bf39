"""Chunk vectors and nearest-neighbour search: one FAISS index that grows from exact to approximate.

This module owns the FAISS index holding (id, vector) pairs, the choice of its
structure by size, IVF training and `nprobe` calibration, and the index file.
It leaves to others what an id means (`qa.index` maps ids to chunks), embedding
and normalising the vectors, and publishing the index folder atomically.

Structure by size (figures measured by `python -m qa.scale_bench`, see docs/scale.md):

- up to `FLAT_LIMIT` vectors: exact search, `IndexIDMap2(IndexFlatIP)`;
- past it: `IndexIVFScalarQuantizer` with float16 codes and inner product,
  trained on the vectors it holds. float16 halves the memory of float32; its
  rounding swaps near-ties (within ~1e-3 cosine) and so caps recall@10 near
  0.987, where 8-bit or PQ codes lose far more on e5's crowded neighbours.
  `nprobe` is the smallest that finds `CALIBRATION_RECALL` of a full scan's
  top 10, measured on held-out stored vectors.
- IVF add and remove by id work without retraining. When the store has grown
  `RETRAIN_GROWTH` times past its training size it retrains inside `add`: the
  cost is geometric, so it stays a constant cost per added vector. When it
  shrinks below half `FLAT_LIMIT`, it goes back to exact search.

Vectors must be L2-normalised float32 so that inner product is cosine similarity.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

FLAT = "flat"
IVF = "ivf-fp16"

# Past this many vectors an exact single-query search takes more than a few ms on
# one core of the 2-core machine (p50 0.6 ms at 10k, 2.4 ms at 40k, 13 ms at 80k).
FLAT_LIMIT = 40_000
# nlist = NLIST_PER_SQRT * sqrt(n), the usual rule; the cap bounds k-means time
# on two cores (35-65 s for 4,000 lists on the busy shared machine).
NLIST_PER_SQRT = 4
NLIST_MAX = 4096
# faiss samples up to 256 points per list by default: minutes at 1M vectors.
# 32 per list is enough for centroids that only route searches.
TRAIN_POINTS_PER_LIST = 32
RETRAIN_GROWTH = 4
# Share of a full scan's top 10 that nprobe must find for held-out stored vectors.
# Real questions are harder than stored vectors: against 3.4k real e5 PIAF
# sentences, 0.98 gave PIAF questions 0.965 recall@10 and synthetic queries as
# little as 0.954; 0.99 gave 0.99 and 0.971. The goal is 0.95 against exact search.
CALIBRATION_RECALL = 0.99
CALIBRATION_QUERIES = 256
CALIBRATION_K = 10
# Below this many queries, one OpenMP thread: on the shared 2-core machine a
# second thread made single-query search 3-10x slower (docs/scale.md).
PARALLEL_MIN_QUERIES = 16
_SEED = 1234


class VectorStore:
    """Caller ids (int64) and their vectors in one FAISS index; see the module docstring."""

    def __init__(self, index, ids: np.ndarray) -> None:
        """Wrap an existing faiss index; use `create` or `load` instead."""
        self._index = index
        # Sorted copy of the ids, rebuilt from the index on load: it rejects
        # duplicate ids (FAISS would keep both) without scanning the index.
        self._ids = np.sort(np.asarray(ids, dtype=np.int64))

    # ------------------------------------------------------------ life cycle

    @classmethod
    def create(cls, dim: int) -> VectorStore:
        """An empty exact store for vectors of `dim` dimensions."""
        return cls(_flat_index(dim), np.empty(0, dtype=np.int64))

    @classmethod
    def load(cls, path: Path) -> VectorStore:
        """Read a store written by `save`."""
        import faiss

        index = faiss.read_index(str(path))
        if not _is_flat(index) and not isinstance(index, faiss.IndexIVFScalarQuantizer):
            raise ValueError(f"{path}: not a vector store index ({type(index).__name__})")
        return cls(index, _index_ids(index))

    def save(self, path: Path) -> None:
        """Write the index to `path` (FAISS's own format, no pickle)."""
        import faiss

        faiss.write_index(self._index, str(path))

    # ------------------------------------------------------------ properties

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def kind(self) -> str:
        """`"flat"` (exact) or `"ivf-fp16"` (approximate)."""
        return FLAT if _is_flat(self._index) else IVF

    @property
    def nlist(self) -> int | None:
        return None if _is_flat(self._index) else int(self._index.nlist)

    @property
    def nprobe(self) -> int | None:
        return None if _is_flat(self._index) else int(self._index.nprobe)

    def ids(self) -> np.ndarray:
        """The stored ids, sorted."""
        return self._ids.copy()

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """A boolean mask: which of `ids` are stored."""
        return _member(self._ids, np.asarray(ids, dtype=np.int64))

    def memory_bytes(self) -> int:
        """Estimated resident size of the index and the id copy."""
        n = self.ntotal
        if _is_flat(self._index):
            # float32 vectors, the id array and IndexIDMap2's id -> row hash map.
            index_bytes = n * (4 * self.dim + 8 + 48)
        else:
            index = self._index
            index_bytes = n * (index.code_size + 8) + index.nlist * (4 * self.dim + 64)
        return index_bytes + self._ids.nbytes

    # ------------------------------------------------------------ changes

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store `vectors` under `ids`; an id already stored or repeated is a ValueError."""
        ids, vectors = self._checked(ids, vectors)
        if len(ids) == 0:
            return
        if len(np.unique(ids)) != len(ids) or self.contains(ids).any():
            raise ValueError("ids already stored, or repeated in the batch")
        if _is_flat(self._index) and self.ntotal + len(ids) > FLAT_LIMIT:
            self._index = self._converted_with(ids, vectors)
        else:
            self._index.add_with_ids(vectors, ids)
        fresh = np.sort(ids)
        self._ids = np.insert(self._ids, np.searchsorted(self._ids, fresh), fresh)
        if _needs_retraining(self._index):
            self._rebuild(_trained_ivf)

    def _converted_with(self, ids: np.ndarray, vectors: np.ndarray):
        """An IVF index of the stored vectors plus these."""
        if self.ntotal:
            old_ids, old_vectors = _contents(self._index)
            ids, vectors = np.concatenate([old_ids, ids]), np.concatenate([old_vectors, vectors])
        return _trained_ivf(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        """Forget `ids` (unknown ids are ignored); returns how many were stored."""
        import faiss

        ids = np.unique(np.asarray(ids, dtype=np.int64))
        known = ids[_member(self._ids, ids)]
        if len(known) == 0:
            return 0
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(known)))
        self._ids = np.delete(self._ids, np.searchsorted(self._ids, known))
        if not _is_flat(self._index) and self.ntotal < FLAT_LIMIT // 2:
            self._rebuild(_filled_flat)
        return removed

    def convert(self) -> None:
        """Switch to the approximate structure now (normally done by `add` past FLAT_LIMIT)."""
        if _is_flat(self._index) and self.ntotal > 0:
            self._rebuild(_trained_ivf)

    def _rebuild(self, builder) -> None:
        ids, vectors = _contents(self._index)
        self._index = builder(vectors, ids)

    def _checked(self, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(ids) and ids.min() < 0:
            raise ValueError("ids must be >= 0 (FAISS pads results with -1)")
        if vectors.ndim != 2 or vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)} vectors of dim {self.dim}, got {vectors.shape}")
        return ids, vectors

    # ------------------------------------------------------------ search

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` (scores, ids) per query row, best first; id -1 and score -inf pad."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"expected queries of shape (n, {self.dim}), got {queries.shape}")
        if k < 1:
            raise ValueError("k must be at least 1")
        threads = None if len(queries) >= PARALLEL_MIN_QUERIES else 1
        with omp_threads(threads):
            scores, ids = self._index.search(queries, k)
        scores[ids < 0] = -np.inf
        return scores, ids


# ---------------------------------------------------------------- helpers


@contextmanager
def omp_threads(n: int | None) -> Iterator[None]:
    """Run FAISS on `n` OpenMP threads in this thread (None: leave as is)."""
    import faiss

    if n is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _member(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of `ids` are in `sorted_ids`, in O(len(ids) log n)."""
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), dtype=bool)
    at = np.searchsorted(sorted_ids, ids).clip(max=len(sorted_ids) - 1)
    return sorted_ids[at] == ids


def _is_flat(index) -> bool:
    import faiss

    return isinstance(index, faiss.IndexIDMap2)


def _flat_index(dim: int):
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _filled_flat(vectors: np.ndarray, ids: np.ndarray):
    index = _flat_index(vectors.shape[1])
    index.add_with_ids(vectors, ids)
    return index


def _index_ids(index) -> np.ndarray:
    """Every id the index holds, in storage order."""
    import faiss

    if _is_flat(index):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    lists = [_ivf_list(index, i)[0] for i in range(index.nlist)]
    return np.concatenate(lists) if lists else np.empty(0, dtype=np.int64)


def _contents(index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 vectors) of every stored vector."""
    import faiss

    if _is_flat(index):
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        return ids, index.index.reconstruct_n(0, index.ntotal)
    parts = [_ivf_list(index, i) for i in range(index.nlist)]
    ids = np.concatenate([p[0] for p in parts])
    # Codes are the float16 vectors themselves (no residual), so decoding is a cast.
    codes = np.concatenate([p[1] for p in parts])
    return ids, codes.view(np.float16).astype(np.float32).reshape(len(ids), index.d)


def _ivf_list(index, list_no: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, raw codes) of one inverted list, copied out of FAISS."""
    import faiss

    invlists = index.invlists
    size = invlists.list_size(list_no)
    if size == 0:
        return np.empty(0, dtype=np.int64), np.empty((0, index.code_size), dtype=np.uint8)
    ids = faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy()
    codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * index.code_size).copy()
    return ids, codes.reshape(size, index.code_size)


def nlist_for(n: int) -> int:
    """Number of IVF lists for `n` vectors (k-means needs at least one point per list)."""
    return max(1, min(NLIST_MAX, n, round(NLIST_PER_SQRT * math.sqrt(n))))


def _needs_retraining(index) -> bool:
    """True once the store holds RETRAIN_GROWTH times the vectors its lists were sized for."""
    if _is_flat(index) or index.nlist >= NLIST_MAX:
        return False
    trained_for = (index.nlist / NLIST_PER_SQRT) ** 2
    return index.ntotal >= RETRAIN_GROWTH * trained_for


def _trained_ivf(vectors: np.ndarray, ids: np.ndarray):
    """An IVF index trained on (a sample of) `vectors`, filled, with a calibrated nprobe."""
    import faiss

    n, dim = vectors.shape
    nlist = nlist_for(n)
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_fp16,
        faiss.METRIC_INNER_PRODUCT, False,
    )
    index.cp.seed = _SEED
    index.cp.min_points_per_centroid = 1  # small stores train on few points per list
    rng = np.random.default_rng(_SEED)
    sample = rng.choice(n, min(n, TRAIN_POINTS_PER_LIST * nlist), replace=False)
    index.train(vectors[np.sort(sample)])
    index.add_with_ids(vectors, ids)
    index.nprobe = calibrate_nprobe(index, vectors, ids, rng)
    return index


def calibrate_nprobe(index, vectors: np.ndarray, ids: np.ndarray, rng) -> int:
    """Smallest nprobe that finds CALIBRATION_RECALL of what a full scan of the lists finds.

    Queries are held-out stored vectors, left out of their own answers. Against
    the full scan rather than float32 exact search, because float16 codes alone
    cap recall@10 near 0.987 (near-ties within ~1e-3 cosine swap places), and
    nprobe cannot buy that back. A result counts as found when it scores at
    least the full scan's 10th best, so duplicate chunks do not read as misses.
    """
    k = CALIBRATION_K
    rows = rng.choice(len(vectors), min(len(vectors), CALIBRATION_QUERIES), replace=False)
    queries, own = vectors[rows], ids[rows]
    index.nprobe = index.nlist
    best = _first_k_except(*index.search(queries, k + 1), own, k)
    bar = best[:, -1:] - 1e-6
    wanted = np.isfinite(best).sum(axis=1)
    for nprobe in _nprobe_grid(index.nlist):
        index.nprobe = nprobe
        found = _first_k_except(*index.search(queries, k + 1), own, k)
        hits = np.minimum((found >= bar).sum(axis=1), wanted)
        if hits.sum() >= CALIBRATION_RECALL * wanted.sum():
            return nprobe
    return int(index.nlist)


def _nprobe_grid(nlist: int) -> Iterator[int]:
    """1, 2, 3, 4, 6, 8, 11, 16, ... up to nlist: steps of sqrt(2)."""
    seen = set()
    for step in range(2 * int(math.log2(max(nlist, 1))) + 3):
        nprobe = min(nlist, round(2 ** (step / 2)))
        if nprobe not in seen:
            seen.add(nprobe)
            yield nprobe


def _first_k_except(scores: np.ndarray, keys: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """Per row, the first `k` scores whose key is neither the row's own key nor -1."""
    keep = (keys != own[:, None]) & (keys >= 0)
    out = np.full((len(scores), k), -np.inf, dtype=np.float32)
    for row, (values, mask) in enumerate(zip(scores, keep, strict=True)):
        kept = values[mask][:k]
        out[row, : len(kept)] = kept
    return out


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row's exact ids (ignoring -1) that `found` also returns."""
    hits = total = 0
    for got, want in zip(found, exact, strict=True):
        want = want[want >= 0]
        hits += len(np.intersect1d(got, want))
        total += len(want)
    return hits / total if total else 1.0
