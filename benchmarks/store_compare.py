"""`qa bench` on the local store and on Qdrant, side by side in one run.

    python -m benchmarks.store_compare evals/piaf/piaf-v1.0.json
    python -m benchmarks.store_compare evals/piaf/piaf-v1.0.json --retriever dense --limit 200

Runs the benchmark (`qa.eval.run.run_bench`, the code of `qa bench`) once with the local
store, then once with `QA_STORE=qdrant` (local mode in `--qdrant-path`, one collection
per data set), and prints recall@1, recall@5, MRR and the time of each.

The Qdrant build re-uses the passage vectors of the local index (`Replay`): both stores
index the same texts with the same model, and on a shared 2-core machine embedding PIAF
again would cost tens of minutes and measure the model, not the store. Questions are
embedded by the real model in both runs. Pass `--embed` to embed everything again.
Results: `bench-results/store-compare.json` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.embeddings.embedder import load_embedder
from qa.eval.datasets import load_dataset, write_squad_corpus
from qa.eval.run import BenchOptions, index_folder_name, run_bench
from qa.index.vector_store import _flat_blocks
from qa.index.view import load

METRICS = ("recall@1", "recall@5", "mrr")


class Replay:
    """The real embedder, answering passages it finds in a local index from that index
    (the same vectors the model gave when it was built), anything else from the model."""

    def __init__(self, embedder, index_dir: Path):
        self._embedder = embedder
        self.hits = self.misses = 0
        index = load(index_dir)
        self._table: dict[str, np.ndarray] = {}
        for rows, vectors in _flat_blocks(index.store._index):  # PIAF: a flat store
            for row, vector in zip(rows.tolist(), vectors, strict=True):
                self._table[index.chunks[index.chunk_position(row)].text] = vector
        for position in range(len(index.sentence_spans)):
            self._table.setdefault(index.sentence_text(position),
                                   index.sentence_vectors[position][0])

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def encode(self, texts, kind, progress=False):
        if kind != "passage":
            return self._embedder.encode(texts, kind, progress)
        out = np.empty((len(texts), self._embedder.dim), np.float32)
        missing = [i for i, t in enumerate(texts) if t not in self._table]
        for i, text in enumerate(texts):
            if text in self._table:
                out[i] = self._table[text]
        if missing:
            out[missing] = self._embedder.encode([texts[i] for i in missing], kind, progress)
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--retriever", action="append", dest="retrievers")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--work-dir", type=Path, default=Path("bench-results"))
    parser.add_argument("--qdrant-path", type=Path, default=Path("bench-results/qdrant-store"))
    parser.add_argument("--embed", action="store_true", help="embed the Qdrant build again")
    parser.add_argument("--out", type=Path, default=Path("bench-results/store-compare.json"))
    args = parser.parse_args()
    options = BenchOptions(retrievers=tuple(args.retrievers or ("hybrid",)), limit=args.limit,
                           work_dir=args.work_dir, progress=True)
    local = Settings.from_env(store="local")
    qdrant = replace(local, store="qdrant", qdrant_path=str(args.qdrant_path))
    embedder = load_embedder(local)
    rows = {}
    for name, settings in (("local", local), ("qdrant", qdrant)):
        used = embedder
        if name == "qdrant" and not args.embed:
            folder = write_squad_corpus(load_dataset(args.dataset), args.work_dir)
            used = Replay(embedder, folder / index_folder_name(local))
        started = time.perf_counter()
        result = run_bench(args.dataset, settings, options, embedder=used)
        seconds = time.perf_counter() - started
        rows[name] = {"seconds": round(seconds, 1), "index": result.report["index"],
                      "settings": {k: result.report["settings"].get(k)
                                   for k in ("store", "qdrant", "index_dir")},
                      "runs": [{"retriever": r["retriever"], "n": r["n"],
                                **{m: r["metrics"][m] for m in (*METRICS, "retrieve_p50_ms",
                                                                "retrieve_p95_ms",
                                                                "latency_p50_ms")}}
                               for r in result.report["runs"]]}
        if isinstance(used, Replay):
            rows[name]["replayed_passages"] = {"from_local_index": used.hits,
                                               "embedded": used.misses}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"{'store':8} {'retriever':9} {'n':>5} " + " ".join(f"{m:>9}" for m in METRICS)
          + f" {'retr.p50':>9} {'run (s)':>8} {'index (s)':>9}")
    for name, row in rows.items():
        for run in row["runs"]:
            build = row["index"]["load_or_build_seconds"]
            print(f"{name:8} {run['retriever']:9} {run['n']:>5} "
                  + " ".join(f"{run[m]:>9.4f}" for m in METRICS)
                  + f" {run['retrieve_p50_ms']:>9.1f} {row['seconds']:>8.1f} "
                  + (f"{build:>9.1f}" if build is not None else f"{'(reused)':>9}"))


if __name__ == "__main__":
    main()
