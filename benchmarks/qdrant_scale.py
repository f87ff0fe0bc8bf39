"""`python -m benchmarks.qdrant_scale`: Qdrant's local mode from 10k to 100k chunks.

    python -m benchmarks.qdrant_scale --sizes 10000,100000 --queries 100 \\
        --json bench-results/qdrant-scale.json

For each size it fills a collection with the schema of the Qdrant store
(`qa.index.qdrant.engine.new_collection`: dense e5-sized vectors, BM25 sparse vectors
with the IDF modifier) in the client's local mode on disk, then reports the write
time, the folder's size on disk, the time to open it again (local mode reads every
point into memory), the RSS growth, and single-query latency p50/p95 of dense, BM25
and hybrid (RRF) queries as `qa.index.qdrant.search` sends them.

Vectors are `benchmarks.scale_data`'s synthetic e5-like "mixed" set; sparse vectors are
drawn from a Zipf vocabulary of 50k terms, 120 tokens per chunk (a 512-token chunk
leaves about that many BM25 tokens once stop words are gone), through the same
`points.sparse_document`; queries have 5 terms. Only chunk points are written (no
sentence or article points, which searches never scan): the figures are the search's.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.scale_data import make_data
from qa.config import Settings
from qa.index.qdrant import engine as eng
from qa.index.qdrant.engine import BM25, CHUNK, DENSE, qm
from qa.index.qdrant.points import sparse_document

VOCABULARY = 50_000
TOKENS_PER_CHUNK = 120
QUERY_TERMS = 5
_BATCH = 1000


def _tokens(rng: np.random.Generator, n: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.2, n), VOCABULARY)
    return [f"t{r}" for r in ranks]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _rss_mb() -> float:
    """The process's resident memory now, in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def _latencies(client, collection: str, queries: np.ndarray, sparse: list) -> dict:
    shapes = {
        "dense": lambda q, s: {"query": q.tolist(), "using": DENSE, "limit": 50},
        "bm25": lambda q, s: {"query": s, "using": BM25, "limit": 50},
        "hybrid": lambda q, s: {"prefetch": [qm.Prefetch(query=q.tolist(), using=DENSE, limit=50),
                                             qm.Prefetch(query=s, using=BM25, limit=50)],
                                "query": qm.RrfQuery(rrf=qm.Rrf(k=61)), "limit": 10},
    }
    found = {}
    for name, shape in shapes.items():
        times = []
        for vector, terms in zip(queries, sparse, strict=True):
            started = time.perf_counter()
            client.query_points(collection, with_payload=["article_id"], **shape(vector, terms))
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        found[name] = {"p50_ms": round(statistics.median(times), 2),
                       "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2)}
    return found


def measure(n: int, n_queries: int, folder: Path) -> dict:
    rng = np.random.default_rng(n)
    data = make_data("mixed", n, n_queries, seed=7)
    shutil.rmtree(folder, ignore_errors=True)
    settings = Settings(index_dir=folder, store="qdrant", qdrant_path=str(folder / "store"),
                        qdrant_collection="scale")
    engine = eng.engine_for(settings)
    rss_before = _rss_mb()
    started = time.perf_counter()
    collection = eng.new_collection(engine, "scale", data.vectors.shape[1])
    for start in range(0, n, _BATCH):
        points = [qm.PointStruct(
            id=i, vector={DENSE: data.vectors[i].tolist(),
                          BM25: sparse_document(_tokens(rng, TOKENS_PER_CHUNK), TOKENS_PER_CHUNK)},
            payload={"kind": CHUNK, "article_id": f"a{i // 4}", "start": 0, "end": 2000})
            for i in range(start, min(start + _BATCH, n))]
        engine.client.upsert(collection, points, wait=True)
    write_s = time.perf_counter() - started
    eng.close_engines()
    size = _size(folder / "store")
    rss_closed = _rss_mb()
    started = time.perf_counter()
    engine = eng.engine_for(settings)
    engine.client.count(collection)
    open_s = time.perf_counter() - started
    sparse = []
    for _ in range(n_queries):
        indices = sorted({int(t[1:]) for t in _tokens(rng, QUERY_TERMS)})
        sparse.append(qm.SparseVector(indices=indices, values=[1.0] * len(indices)))
    rss_open = _rss_mb()
    latencies = _latencies(engine.client, collection, data.queries, sparse)
    eng.close_engines()
    return {"chunks": n, "write_s": round(write_s, 1), "disk_mib": round(size / 2**20, 1),
            "open_s": round(open_s, 2), "rss_open_mib": round(rss_open - rss_closed),
            "rss_before_mib": round(rss_before), **latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--folder", type=Path, default=Path("bench-results/qdrant-scale"))
    parser.add_argument("--json", type=Path, default=Path("bench-results/qdrant-scale.json"))
    args = parser.parse_args()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        rows.append(measure(n, args.queries, args.folder / str(n)))
        print(json.dumps(rows[-1]), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
