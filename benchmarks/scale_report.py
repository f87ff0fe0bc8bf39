"""The report of the scale benchmark: the machine and store parameters it ran with, and
the Markdown tables (store by size, increments, removals, efSearch curves, exact search
by size, real vectors) rendered from the report dict.
"""

from __future__ import annotations

import os
import platform

from benchmarks.scale_data import INCREMENT_ARTICLES, INCREMENT_CHUNKS_PER_ARTICLE
from benchmarks.scale_measure import EF_CURVE, REMOVED_SHARE
from qa.index import calibration, vector_store


def environment() -> dict:
    """The machine, its load, and the store's structural constants the run used."""
    import faiss

    return {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "faiss": faiss.__version__, "load_average": [round(x, 2) for x in os.getloadavg()],
        "flat_limit": vector_store.FLAT_LIMIT, "hnsw_m": vector_store.HNSW_M,
        "ef_construction": vector_store.EF_CONSTRUCTION,
        "calibration_recall": calibration.CALIBRATION_RECALL,
        "calibration_queries": calibration.CALIBRATION_QUERIES,
    }


def format_markdown(report: dict) -> str:
    """The tables of docs/scale.md, from the report `scale_bench` writes as JSON."""
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

