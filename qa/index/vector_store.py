"""Chunk vectors and nearest-neighbour search: one FAISS index that grows from exact to approximate.

This module owns the FAISS index holding (id, vector) pairs, the choice of its
structure by size, the HNSW graph with its tombstones and compaction, and the index
files; how wide the graph searches (`efSearch`) is calibrated in `calibration`. It
leaves to others what an id means (`view` maps ids to chunks), embedding and
normalising the vectors, and publishing the index folder atomically.

Structure by size (figures measured by `python -m benchmarks.scale_bench`, see docs/scale.md):

- up to `FLAT_LIMIT` vectors: exact search, `IndexIDMap2(IndexFlatIP)`;
- past it: an HNSW graph over the float32 vectors (`IndexHNSWFlat`, inner
  product). IVF, tried first, had to scan a quarter of its lists at 1M vectors
  on data as hard as e5's (40-65 ms a query); the graph answers in a few ms.
  float16 codes (`IndexHNSWSQ`) would halve the vectors' memory, but their
  rounding swaps e5's near-ties (within ~1e-3 cosine): at 1M they cost 0.01-0.02
  recall@10 at the same efSearch, and were no faster. float32 fits the 2 GB
  budget at 1M vectors (1.7 GiB with the links). `efSearch` is the smallest on a
  grid that finds `CALIBRATION_RECALL` of the exact top 10 for calibration
  queries drawn to be as hard as real questions.
- FAISS cannot take nodes out of an HNSW graph, so removing marks the row dead
  (tombstone) and searches skip dead rows through an `IDSelectorBitmap` of the
  live ones. The graph keeps routing through dead rows, so recall holds; when
  dead rows pass `COMPACT_DEAD_SHARE` of the graph, `remove` rebuilds it from
  the live vectors. Graph rows are numbered by insertion, and `_labels` maps
  them to caller ids (-1 once dead): that keeps the bitmap a plain array over
  rows, and an id removed then added again simply gets a new row.
- Adding inserts into the graph: time proportional to the added vectors, plus
  a copy of its arrays when FAISS grows them (once per process). When the live
  count has grown `CALIBRATION_GROWTH` times since the last calibration, `add`
  calibrates again: recall at a given `efSearch` slowly drops as the graph
  grows, and the geometric schedule keeps the cost constant per added vector.
  Below half `FLAT_LIMIT` live vectors the store goes back to exact search.

Vectors must be L2-normalised float32 so that inner product is cosine similarity.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from qa.index.calibration import CALIBRATION_GROWTH, calibrate_ef_search, graph_search, omp_threads

FLAT = "flat"
HNSW = "hnsw"

# Past this many vectors an exact single-query search takes more than a few ms on
# one core of the 2-core machine (p50 0.6 ms at 10k, 2.3 ms at 40k, 7-13 ms at 80k).
FLAT_LIMIT = 40_000
# Graph degree (2 * M links per row on the bottom layer). On the hard "mixed"
# synthetic data at 100k, M=16 never reached 0.95 recall@10 (0.936 at efSearch
# 1024); 32 reached it at efSearch 256 in 1.1 ms. 48 and 64 were about as fast
# for the same recall, and their links would take the 1M store past 2 GB.
HNSW_M = 32
# Candidates kept while inserting. At 1M mixed vectors, 40 (FAISS's default)
# and 64 gave recall@10 0.94 at efSearch 1024, 96 0.96, 128 0.97 (within noise)
# for a third more insertion work. With 96, 1M vectors build in 4-6 min on 2 cores.
EF_CONSTRUCTION = 96
# Rebuild the graph when this share of its rows is dead: a rebuild costs a full
# build, so the cost per removal stays constant, and up to here the dead rows
# cost search no recall (they still route) and little time.
COMPACT_DEAD_SHARE = 0.25
# Rows read back at once when rebuilding from the graph, to bound the extra memory.
_REBUILD_BLOCK = 65_536
# Below this many queries, one OpenMP thread: on the shared 2-core machine a
# second thread never made a single query faster, and up to 50x slower when
# the machine was busy (docs/scale.md).
PARALLEL_MIN_QUERIES = 16


class VectorStore:
    """Caller ids (int64) and their vectors in one FAISS index; see the module docstring."""

    def __init__(self, index, labels: np.ndarray | None = None,
                 calibrated_for: int = 0) -> None:
        """Wrap a flat index, or a graph with its row -> id labels; use `create` or `load`."""
        self._reset(index, labels, calibrated_for)

    def _reset(self, index, labels: np.ndarray | None, calibrated_for: int) -> None:
        self._index = index
        # Graph only: caller id of each row, -1 once removed (a tombstone).
        self._labels = labels
        self._calibrated_for = calibrated_for
        self._rows = None
        if labels is None:
            self._ids = np.sort(_flat_ids(index))
        else:
            # Live ids sorted and their rows in the same order: they reject
            # duplicate ids and find rows to remove without scanning the index.
            rows = np.flatnonzero(labels >= 0)
            order = np.argsort(labels[rows])
            self._ids, self._rows = labels[rows][order], rows[order]
        self._refresh_selector()

    # ------------------------------------------------------------ life cycle

    @classmethod
    def create(cls, dim: int) -> VectorStore:
        """An empty exact store for vectors of `dim` dimensions."""
        return cls(_flat_index(dim))

    @classmethod
    def load(cls, path: Path) -> VectorStore:
        """Read a store written by `save`."""
        import faiss

        index = faiss.read_index(str(path))
        if _is_flat(index):
            return cls(index)
        if not isinstance(index, faiss.IndexHNSWFlat):
            raise ValueError(f"{path}: not a vector store index ({type(index).__name__})")
        labels = np.load(_sidecar(path, ".ids.npy"), allow_pickle=False)
        if labels.dtype != np.int64 or labels.shape != (index.ntotal,):
            raise ValueError(f"{path}: {labels.shape} labels for {index.ntotal} rows")
        state = json.loads(_sidecar(path, ".json").read_text(encoding="utf-8"))
        return cls(index, labels, int(state["calibrated_for"]))

    def save(self, path: Path) -> None:
        """Write the index to `path` (FAISS's own format, no pickle).

        A graph also writes its row -> id labels (tombstones included) to
        `<path>.ids.npy` and its calibration size to `<path>.json`.
        """
        import faiss

        faiss.write_index(self._index, str(path))
        if self._labels is not None:
            np.save(_sidecar(path, ".ids.npy"), self._labels, allow_pickle=False)
            _sidecar(path, ".json").write_text(
                json.dumps({"calibrated_for": self._calibrated_for}), encoding="utf-8")

    # ------------------------------------------------------------ properties

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def ntotal(self) -> int:
        """Live vectors (removed ones excluded)."""
        return len(self._ids)

    @property
    def kind(self) -> str:
        """`"flat"` (exact) or `"hnsw"` (approximate)."""
        return FLAT if self._labels is None else HNSW

    @property
    def ef_search(self) -> int | None:
        """The graph's calibrated efSearch (None when exact)."""
        return None if self._labels is None else int(self._index.hnsw.efSearch)

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        """Override the calibration (kept until the next build or calibration)."""
        if self._labels is None:
            raise ValueError("an exact store has no efSearch")
        if value < 1:
            raise ValueError("efSearch must be at least 1")
        self._index.hnsw.efSearch = int(value)

    @property
    def dead(self) -> int:
        """Removed rows the graph still holds (0 when exact)."""
        return 0 if self._labels is None else len(self._labels) - len(self._ids)

    def ids(self) -> np.ndarray:
        """The stored ids, sorted."""
        return self._ids.copy()

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """A boolean mask: which of `ids` are stored."""
        return _member(self._ids, np.asarray(ids, dtype=np.int64))

    def memory_bytes(self) -> int:
        """Estimated resident size of the index and the id arrays."""
        if self._labels is None:
            # float32 vectors, the id array and IndexIDMap2's id -> row hash map.
            return self.ntotal * (4 * self.dim + 8 + 48) + self._ids.nbytes
        hnsw, rows = self._index.hnsw, len(self._labels)
        graph = 4 * hnsw.neighbors.size() + 8 * hnsw.offsets.size() + 4 * hnsw.levels.size()
        vectors = rows * 4 * self.dim
        bitmap = 0 if self._bitmap is None else self._bitmap.nbytes
        return graph + vectors + self._labels.nbytes + self._ids.nbytes + self._rows.nbytes + bitmap

    # ------------------------------------------------------------ changes

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store `vectors` under `ids`; an id already stored or repeated is a ValueError."""
        ids, vectors = self._checked(ids, vectors)
        if len(ids) == 0:
            return
        if len(np.unique(ids)) != len(ids) or self.contains(ids).any():
            raise ValueError("ids already stored, or repeated in the batch")
        if self._labels is None and self.ntotal + len(ids) > FLAT_LIMIT:
            self._become_graph([*_flat_blocks(self._index), (ids, vectors)])
            return
        if self._labels is None:
            self._index.add_with_ids(vectors, ids)
            self._ids = _inserted(self._ids, np.sort(ids))
            return
        rows = np.arange(len(self._labels), len(self._labels) + len(ids))
        self._index.add(vectors)
        self._labels = np.concatenate([self._labels, ids])
        order = np.argsort(ids)
        at = np.searchsorted(self._ids, ids[order])
        self._ids = np.insert(self._ids, at, ids[order])
        self._rows = np.insert(self._rows, at, rows[order])
        self._refresh_selector()
        if self.ntotal >= CALIBRATION_GROWTH * self._calibrated_for:
            self._calibrate()

    def remove(self, ids: np.ndarray) -> int:
        """Forget `ids` (unknown ids are ignored); returns how many were stored."""
        import faiss

        ids = np.unique(np.asarray(ids, dtype=np.int64))
        known = ids[_member(self._ids, ids)]
        if len(known) == 0:
            return 0
        at = np.searchsorted(self._ids, known)
        self._ids = np.delete(self._ids, at)
        if self._labels is None:
            self._index.remove_ids(faiss.IDSelectorBatch(known))
            return len(known)
        self._labels[self._rows[at]] = -1
        self._rows = np.delete(self._rows, at)
        if self.ntotal < FLAT_LIMIT // 2:
            flat = _flat_index(self.dim)
            for block_ids, block in self._live_blocks():
                flat.add_with_ids(block, block_ids)
            self._reset(flat, None, 0)
        elif self.dead > COMPACT_DEAD_SHARE * len(self._labels):
            self._become_graph(self._live_blocks())
        self._refresh_selector()
        return len(known)

    def convert(self) -> None:
        """Switch to the graph now (normally done by `add` past FLAT_LIMIT)."""
        if self._labels is None and self.ntotal > 0:
            self._become_graph(_flat_blocks(self._index))

    def _become_graph(self, blocks) -> None:
        """Build a fresh graph from (ids, vectors) blocks, then calibrate it."""
        import faiss

        index = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        labels = []
        for block_ids, block in blocks:
            index.add(block)
            labels.append(block_ids)
        self._reset(index, np.concatenate(labels), 0)
        self._calibrate()

    def _live_blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, float32 vectors) of the live graph rows, a block at a time."""
        storage = self._index.storage
        for start in range(0, len(self._labels), _REBUILD_BLOCK):
            labels = self._labels[start : start + _REBUILD_BLOCK]
            live = labels >= 0
            if live.any():
                yield labels[live], storage.reconstruct_n(start, len(labels))[live]

    def _calibrate(self) -> None:
        self._index.hnsw.efSearch = calibrate_ef_search(self._index, self._selector, self._labels)
        self._calibrated_for = self.ntotal

    def _refresh_selector(self) -> None:
        """A bitmap of live rows for searches to skip the dead ones (none while none are dead)."""
        import faiss

        if self._labels is None or self.dead == 0:
            self._selector = self._bitmap = None
            return
        # The selector holds a raw pointer: the array must live as long as it does.
        self._bitmap = np.packbits(self._labels >= 0, bitorder="little")
        self._selector = faiss.IDSelectorBitmap(len(self._bitmap), faiss.swig_ptr(self._bitmap))

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
            if self._labels is None:
                scores, ids = self._index.search(queries, k)
            else:
                scores, rows = graph_search(self._index, queries, k, self._selector)
                ids = np.where(rows >= 0, self._labels[rows], -1)
        scores[ids < 0] = -np.inf
        return scores, ids


# ---------------------------------------------------------------- helpers


def _sidecar(path: Path, suffix: str) -> Path:
    return Path(path).with_name(Path(path).name + suffix)


def _member(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of `ids` are in `sorted_ids`, in O(len(ids) log n)."""
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), dtype=bool)
    at = np.searchsorted(sorted_ids, ids).clip(max=len(sorted_ids) - 1)
    return sorted_ids[at] == ids


def _inserted(sorted_ids: np.ndarray, fresh_sorted: np.ndarray) -> np.ndarray:
    return np.insert(sorted_ids, np.searchsorted(sorted_ids, fresh_sorted), fresh_sorted)


def _is_flat(index) -> bool:
    import faiss

    return isinstance(index, faiss.IndexIDMap2)


def _flat_index(dim: int):
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _flat_ids(index) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(index.id_map).astype(np.int64)


def _flat_blocks(index) -> list[tuple[np.ndarray, np.ndarray]]:
    """The flat index's (ids, vectors), as one block (it holds at most FLAT_LIMIT)."""
    return [(_flat_ids(index), index.index.reconstruct_n(0, index.ntotal))]


