"""VectorStore: ids survive every change; the switch to IVF keeps recall (qa/vector_store.py)."""

from __future__ import annotations

import numpy as np
import pytest

from qa import vector_store
from qa.vector_store import FLAT, IVF, VectorStore, recall_at_k

DIM = 48


def _clustered(n: int, seed: int = 0, clusters: int = 40) -> np.ndarray:
    """Normalised points around `clusters` centres with uneven spread per axis."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    spread = rng.uniform(0.1, 0.6, (clusters, DIM)).astype(np.float32)
    owner = rng.integers(0, clusters, n)
    points = centres[owner] + rng.standard_normal((n, DIM)).astype(np.float32) * spread[owner]
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def _ids(n: int, start: int = 0) -> np.ndarray:
    # Sparse, large ids: the store must never assume ids are row numbers.
    return (np.arange(start, start + n, dtype=np.int64) * 7919) + 10**12


def _exact(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    top = np.argsort(-(queries @ vectors.T), axis=1)[:, :k]
    return ids[top]


def _queries(vectors: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = vectors[rng.integers(0, len(vectors), n)]
    q = q + rng.standard_normal(q.shape).astype(np.float32) * 0.05
    return q / np.linalg.norm(q, axis=1, keepdims=True)


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(vector_store, "FLAT_LIMIT", 2000)


def test_add_search_save_load_round_trip(tmp_path):
    vectors, ids = _clustered(300), _ids(300)
    store = VectorStore.create(DIM)
    store.add(ids, vectors)
    scores, found = store.search(vectors[:20], 3)
    assert (found[:, 0] == ids[:20]).all()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert store.kind == FLAT and store.ntotal == 300 and store.dim == DIM

    store.save(tmp_path / "dense.faiss")
    loaded = VectorStore.load(tmp_path / "dense.faiss")
    assert loaded.kind == FLAT and loaded.ntotal == 300
    assert (loaded.ids() == np.sort(ids)).all()
    assert (loaded.search(vectors[:20], 3)[1] == found).all()


def test_fewer_results_than_k_are_padded():
    store = VectorStore.create(DIM)
    store.add(_ids(2), _clustered(2))
    scores, found = store.search(_clustered(1, seed=3), 5)
    assert (found[0, 2:] == -1).all() and np.isneginf(scores[0, 2:]).all()
    assert VectorStore.create(DIM).search(_clustered(1), 3)[1].tolist() == [[-1, -1, -1]]


def test_removed_ids_are_unfindable_and_counted():
    vectors, ids = _clustered(200), _ids(200)
    store = VectorStore.create(DIM)
    store.add(ids, vectors)
    gone = ids[::2]
    assert store.remove(np.concatenate([gone, [-5, 42]])) == len(gone)
    assert store.ntotal == 100 and not store.contains(gone).any()
    _, found = store.search(vectors, 10)
    assert not np.isin(found, gone).any()
    assert store.remove(gone) == 0


def test_duplicate_ids_are_refused():
    store = VectorStore.create(DIM)
    store.add(_ids(10), _clustered(10))
    with pytest.raises(ValueError):
        store.add(_ids(1), _clustered(1, seed=5))
    with pytest.raises(ValueError):
        store.add(np.array([1, 1]), _clustered(2, seed=6))
    with pytest.raises(ValueError):
        store.add(_ids(1, start=50), np.zeros((1, DIM + 1), np.float32))
    with pytest.raises(ValueError):
        store.add(np.array([-3]), _clustered(1, seed=7))
    assert store.ntotal == 10


def test_crossing_the_limit_converts_to_ivf_and_keeps_recall(small_limit, tmp_path):
    vectors, ids = _clustered(3000), _ids(3000)
    store = VectorStore.create(DIM)
    store.add(ids[:1500], vectors[:1500])
    assert store.kind == FLAT
    store.add(ids[1500:], vectors[1500:])
    assert store.kind == IVF and store.ntotal == 3000
    assert (store.ids() == np.sort(ids)).all()
    assert 1 <= store.nprobe <= store.nlist

    queries = _queries(vectors, 200)
    found = store.search(queries, 10)[1]
    assert recall_at_k(found, _exact(vectors, ids, queries, 10)) >= 0.95
    assert store.memory_bytes() < 3000 * DIM * 4  # float16 codes

    gone = ids[:300]
    assert store.remove(gone) == 300 and store.ntotal == 2700
    assert not np.isin(store.search(vectors[:300], 10)[1], gone).any()

    store.save(tmp_path / "dense.faiss")
    loaded = VectorStore.load(tmp_path / "dense.faiss")
    assert loaded.kind == IVF and loaded.nprobe == store.nprobe
    assert (loaded.ids() == np.sort(ids[300:])).all()
    assert (loaded.search(queries, 10)[1] == store.search(queries, 10)[1]).all()


def test_ivf_keeps_taking_adds_and_retrains_when_grown(monkeypatch):
    monkeypatch.setattr(vector_store, "FLAT_LIMIT", 500)
    vectors, ids = _clustered(2600, seed=2), _ids(2600)
    store = VectorStore.create(DIM)
    store.add(ids[:600], vectors[:600])
    first_nlist = store.nlist
    store.add(ids[600:1200], vectors[600:1200])
    assert store.nlist == first_nlist  # plain add, no retraining yet
    store.add(ids[1200:], vectors[1200:])
    assert store.nlist > first_nlist and store.ntotal == 2600
    assert (store.ids() == np.sort(ids)).all()
    queries = _queries(vectors, 100)
    found = store.search(queries, 10)[1]
    assert recall_at_k(found, _exact(vectors, ids, queries, 10)) >= 0.95


def test_shrinking_far_below_the_limit_goes_back_to_exact(small_limit):
    vectors, ids = _clustered(2500, seed=4), _ids(2500)
    store = VectorStore.create(DIM)
    store.add(ids, vectors)
    assert store.kind == IVF
    store.remove(ids[:1600])
    assert store.kind == FLAT and store.ntotal == 900
    assert (store.ids() == np.sort(ids[1600:])).all()
    _, found = store.search(vectors[1600:1700], 1)
    assert (found[:, 0] == ids[1600:1700]).all()


def test_convert_works_on_a_tiny_store():
    vectors, ids = _clustered(5), _ids(5)
    store = VectorStore.create(DIM)
    store.add(ids, vectors)
    store.convert()
    assert store.kind == IVF and store.nlist <= 5
    assert (store.search(vectors, 1)[1][:, 0] == ids).all()


def test_single_queries_leave_the_thread_setting_alone():
    import faiss

    before = faiss.omp_get_max_threads()
    store = VectorStore.create(DIM)
    store.add(_ids(10), _clustered(10))
    store.search(_clustered(1), 3)
    assert faiss.omp_get_max_threads() == before


def test_duplicate_chunks_do_not_inflate_nprobe(small_limit):
    # Boilerplate repeated across articles: equal scores, any copy is a right answer.
    vectors = _clustered(2500, seed=8)
    vectors[:400] = vectors[0]
    store = VectorStore.create(DIM)
    store.add(_ids(2500), vectors)
    assert store.kind == IVF and store.nprobe < store.nlist // 2


def test_loading_a_foreign_index_is_a_value_error(tmp_path):
    import faiss

    faiss.write_index(faiss.IndexFlatIP(DIM), str(tmp_path / "old.faiss"))
    with pytest.raises(ValueError):
        VectorStore.load(tmp_path / "old.faiss")
