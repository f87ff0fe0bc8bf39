"""How wide the HNSW graph searches: efSearch calibrated against exact search.

A graph search visits `efSearch` candidates; more costs time linearly and buys
recall slowly. The store picks the smallest efSearch on a fine grid that finds
`CALIBRATION_RECALL` of the exact top 10 for question-like queries (Gaussian draws
around the stored vectors, see `CALIBRATION_SAMPLE`), at build and compaction and
after the store grew `CALIBRATION_GROWTH` times. Also the OpenMP thread control that
the store's searches run under, and the recall measure the benchmarks share.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

# efSearch candidates, in steps of 2^(1/3): at 1M vectors recall grows slowly
# with efSearch and latency linearly (7 ms at 1024, 12 ms at 1625), so the
# steps must be fine. The largest answers a query at 1M in about 14 ms. The
# smallest is 64: below it a search saves under 0.3 ms, and on small graphs
# real questions were harder than the calibration queries (300 PIAF
# sentences: efSearch 20 calibrated, questions got recall@10 0.918).
EF_GRID = tuple(round(64 * 2 ** (step / 3)) for step in range(16))
# Share of the exact top 10 that efSearch must find for calibration queries:
# the 0.95 goal, plus a little for the drop at a fixed efSearch while the store
# grows up to CALIBRATION_GROWTH times before it calibrates again.
CALIBRATION_RECALL = 0.955
CALIBRATION_QUERIES = 512
CALIBRATION_K = 10
# Calibration queries are isotropic Gaussian draws around the mean of this many
# live vectors, with their total variance: like real questions, and unlike
# stored vectors, they fall between the passages. On 2,000 real e5 PIAF
# sentences, with graphs of M=8 / 16 / 32 searched at efSearch 32, PIAF
# questions got recall@10 0.652 / 0.827 / 0.925, these draws 0.675 / 0.846 /
# 0.914, stored vectors left out of their own answers 0.881 / 0.970 / 0.993
# (0.821 / 0.930 / 0.967 moved 0.4 of the way between two others). Calibrating
# on stored vectors would pick an efSearch far too small for questions. So,
# on synthetic data, would the bench's queries (held-out chunks plus noise):
# on 1M "mixed" vectors they got 0.960 at efSearch 1024, these draws 0.941.
CALIBRATION_SAMPLE = 4096
CALIBRATION_GROWTH = 1.5
_SEED = 1234


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


def graph_search(index, queries: np.ndarray, k: int, selector,
                  ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) from the graph, skipping rows outside `selector` when given."""
    import faiss

    params = faiss.SearchParametersHNSW(efSearch=ef_search or index.hnsw.efSearch)
    if selector is not None:
        params.sel = selector
    return index.search(queries, k, params=params)


def calibrate_ef_search(index, selector, labels: np.ndarray) -> int:
    """Smallest efSearch on EF_GRID that finds CALIBRATION_RECALL of the exact top 10.

    Queries are drawn around the live vectors (see CALIBRATION_SAMPLE). A result
    counts as found when it scores at least the exact 10th best, so duplicate
    chunks do not read as misses.
    """
    import faiss

    k = CALIBRATION_K
    queries = _calibration_queries(index.storage, labels)
    params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    best, rows = index.storage.search(queries, k, params=params)
    wanted = (rows >= 0).sum(axis=1)
    bar = best[np.arange(len(best)), np.maximum(wanted - 1, 0)][:, None] - 1e-6
    for ef in EF_GRID:
        found, rows = graph_search(index, queries, k, selector, ef)
        hits = np.minimum(((found >= bar) & (rows >= 0)).sum(axis=1), wanted)
        if hits.sum() >= CALIBRATION_RECALL * wanted.sum():
            return ef
    return EF_GRID[-1]


def _calibration_queries(storage, labels: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(_SEED)
    live = np.flatnonzero(labels >= 0)
    sample = storage.reconstruct_batch(
        np.sort(rng.choice(live, min(len(live), CALIBRATION_SAMPLE), replace=False)))
    return gaussian_queries(sample, CALIBRATION_QUERIES, rng)


def gaussian_queries(sample: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` normalised isotropic Gaussian draws with the mean and total variance of `sample`."""
    mean = sample.mean(axis=0)
    spread = np.sqrt(((sample - mean) ** 2).sum(axis=1).mean() / sample.shape[1])
    queries = mean + spread * rng.standard_normal((n, sample.shape[1]))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return queries.astype(np.float32)


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row's exact ids (ignoring -1) that `found` also returns."""
    hits = total = 0
    for got, want in zip(found, exact, strict=True):
        want = want[want >= 0]
        hits += len(np.intersect1d(got, want))
        total += len(want)
    return hits / total if total else 1.0
