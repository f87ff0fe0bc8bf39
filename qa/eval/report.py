"""The reports of `qa bench`: each retriever's quality and speed figures with their n,
the settings and index the run used, and the terminal table, Markdown and files.

The report is a plain dict (what `--json` writes); the tables are rendered from it
alone, so a saved report renders the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qa import __version__
from qa.answering.assistant import Assistant
from qa.config import Settings
from qa.eval import metrics as m
from qa.eval.datasets import Dataset
from qa.eval.scoring import Outcome
from qa.index.manifest import Manifest

if TYPE_CHECKING:
    # Annotations only: `qa.eval.run` assembles its report with these functions.
    from qa.eval.run import Asked, BenchOptions, BenchResult, IndexInfo, Timing

# The checkout the package runs from: qa/eval/report.py → the repository root.
_ROOT = Path(__file__).resolve().parents[2]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes vs kB


def quality_figures(outcomes: Sequence[Outcome]) -> dict[str, m.Figure]:
    """Retrieval, answer, citation and refusal figures over one retriever's outcomes."""
    eligible = [o.gold_rank for o in outcomes if o.eligible]
    shown = [o.answer_rank for o in outcomes if o.eligible]
    answerable = [o for o in outcomes if o.answerable]
    answered = [o for o in answerable if o.answered]
    return {
        "recall@1": m.recall_at_k(eligible, 1),
        "recall@5": m.recall_at_k(eligible, 5),
        "recall@10": m.recall_at_k(eligible, 10),
        "mrr": m.mean_reciprocal_rank(eligible),
        "answer_recall@1": m.recall_at_k(shown, 1),
        "exact_match": m.mean([o.exact for o in answerable]),
        "f1": m.mean([o.f1 for o in answerable]),
        "contains": m.share([o.contains for o in answerable]),
        "citation_precision": m.citation_precision([o.citations for o in answered]),
        "answer_support": m.answer_support([o.supports for o in answered]),
        **m.refusal_rates([(o.answerable, o.answered) for o in outcomes]),
    }


def speed_figures(timings: Sequence[Timing], info: IndexInfo) -> dict[str, m.Figure]:
    """Latency percentiles of the timed sample, the index build rate and peak memory."""
    n = len(timings)
    figures: dict[str, m.Figure] = {}
    for stage, values in (("latency", [t.total_ms for t in timings]),
                          ("retrieve", [t.retrieve_ms for t in timings]),
                          ("answer", [t.answer_ms for t in timings])):
        for name, q in (("p50", 50), ("p95", 95), ("max", 100)):
            figures[f"{stage}_{name}_ms"] = m.Figure(m.percentile(values, q), n)
    chunks = int(info.counts.get("chunks", 0))
    seconds = info.build_seconds
    figures["index_seconds"] = m.Figure(seconds, chunks)
    figures["chunks_per_second"] = m.Figure(chunks / seconds if seconds else None, chunks)
    figures["peak_rss_mb"] = m.Figure(peak_rss_mb(), 1)
    return figures


def run_report(retriever: str, answerer: str, asked: Sequence[Asked], info: IndexInfo,
               extra: dict[str, int]) -> dict:
    """One entry of "runs": metric values, and their n under the same names in counts."""
    outcomes = [a.outcome for a in asked]
    timings = [a.timing for a in asked if a.timing is not None]
    figures = quality_figures(outcomes) | speed_figures(timings, info)
    metrics = {name: None if f.value is None or f.n == 0 else round(f.value, 4)
               for name, f in figures.items()}
    counts = {name: f.n for name, f in figures.items()} | extra | {
        "answered": sum(o.answered for o in outcomes),
        "prefix_mismatch": sum(not o.prefix_agrees for o in outcomes),
        "vector_mismatch": sum(not t.same_answer for t in timings),
    }
    return {"retriever": retriever, "answerer": answerer, "n": len(outcomes),
            "metrics": metrics, "counts": counts}


def corpus_hash(manifest: Manifest) -> str:
    """Hash of the corpus files the index was built from."""
    files = json.dumps(manifest.corpus_files, sort_keys=True)
    return hashlib.sha256(files.encode()).hexdigest()[:16]


def git_sha(root: Path = _ROOT) -> str | None:
    """The checked-out commit, read from .git without running git; None when unknown."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = (root / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except (OSError, IndexError):
        return None
    return None


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def settings_report(settings: Settings, options: BenchOptions, dataset: Dataset,
                    assistant: Assistant) -> dict:
    """The report's "settings": what produced the figures, to compare runs by."""
    return {
        "model": settings.embedding_model,
        "backend": settings.backend,
        "reader_backend": settings.reader_backend,
        "threads": settings.threads,
        "k": options.k or settings.top_k,
        "retrievers": list(options.retrievers),
        "answerers": list(options.answerers) or [settings.answerer],
        "rerank_depth": settings.rerank_depth,
        "reader_threshold": settings.reader_threshold,
        "reader_fusion": list(settings.reader_fusion),
        "corpus_dir": str(settings.corpus_dir),
        "index_dir": str(settings.index_dir),
        "store": settings.store,
        **({"qdrant": {"collection": settings.qdrant_collection,
                       "where": settings.qdrant_url or settings.qdrant_path
                       or str(Path(settings.index_dir) / "qdrant")}}
           if settings.store == "qdrant" else {}),
        "corpus_hash": corpus_hash(assistant.index.manifest),
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap": settings.chunk_overlap,
        "candidates": settings.candidates,
        "rrf_k": settings.rrf_k,
        "answer_threshold": settings.answer_threshold,
        "max_citations": settings.max_citations,
        "dataset": {"path": str(dataset.path), "format": dataset.format,
                    "sha256": _file_sha256(dataset.path), "limit": options.limit,
                    "seed": options.seed, "split": options.split},
        "version": __version__,
        "git_sha": git_sha(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def index_report(info: IndexInfo) -> dict:
    """The report's "index": whether this run built it, and how long it took."""
    return {"built_now": info.built_now, "build_seconds": info.build_seconds,
            "load_or_build_seconds": info.wall_seconds, "counts": info.counts}


# (metric, label, format): fractions with 3 decimals, times and sizes shorter.
_ROWS = [
    ("recall@1", "recall@1", ".3f"), ("recall@5", "recall@5", ".3f"),
    ("recall@10", "recall@10", ".3f"), ("mrr", "MRR@10", ".3f"),
    ("answer_recall@1", "answer passage @1", ".3f"),
    ("exact_match", "exact match", ".3f"), ("f1", "token F1", ".3f"),
    ("contains", "contains", ".3f"), ("citation_precision", "citation precision", ".3f"),
    ("answer_support", "answer support", ".3f"), ("refusal_correct", "refusal correct", ".3f"),
    ("false_refusal", "false refusal", ".3f"), ("latency_p50_ms", "latency p50 (ms)", ".0f"),
    ("latency_p95_ms", "latency p95 (ms)", ".0f"), ("latency_max_ms", "latency max (ms)", ".0f"),
    ("retrieve_p50_ms", "retrieve p50 (ms)", ".0f"),
    ("retrieve_p95_ms", "retrieve p95 (ms)", ".0f"),
    ("answer_p50_ms", "answer p50 (ms)", ".1f"), ("answer_p95_ms", "answer p95 (ms)", ".1f"),
    ("index_seconds", "index build (s)", ".1f"), ("chunks_per_second", "chunks/s", ".1f"),
    ("peak_rss_mb", "peak RSS (MB)", ".0f"),
]


def _cell(run: dict, metric: str, spec: str) -> str:
    value = run["metrics"].get(metric)
    shown = "—" if value is None else format(value, spec)
    return f"{shown} ({run['counts'].get(metric, 0)})"


def table_rows(report: dict) -> list[list[str]]:
    """Header and one row per metric: "value (n)" for each run, named by its retriever,
    and by its answerer too when the report compares answerers."""
    runs = report["runs"]
    several = len({run.get("answerer") for run in runs}) > 1
    rows = [["metric (n)"] + [f"{run['retriever']}/{run['answerer']}" if several
                              else run["retriever"] for run in runs]]
    rows += [[label] + [_cell(run, metric, spec) for run in runs] for metric, label, spec in _ROWS]
    return rows


def format_table(report: dict) -> str:
    """The terminal table."""
    rows = table_rows(report)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _counts_text(counts: dict) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.items())


def format_markdown(report: dict) -> str:
    """The report for humans: settings, then the metric table."""
    s, index = report["settings"], report["index"]
    counts = report["runs"][0]["counts"] if report["runs"] else {}
    rows = table_rows(report)
    lines = [
        f"# qa bench — {Path(s['dataset']['path']).name}", "",
        f"- {counts.get('questions', 0)} questions ({counts.get('answerable', 0)} answerable, "
        f"{counts.get('unanswerable', 0)} unanswerable); limit {s['dataset']['limit']}, "
        f"seed {s['dataset']['seed']}",
        f"- model `{s['model']}`, k={s['k']}, chunks of {s['chunk_tokens']} tokens "
        f"(overlap {s['chunk_overlap']}), answer threshold {s['answer_threshold']}",
        f"- index: {_counts_text(index['counts'])} built in {index['build_seconds']} s"
        f"{' (this run)' if index['built_now'] else ''}; corpus hash `{s['corpus_hash']}`",
        f"- qa {s['version']}, git {s['git_sha'] or 'unknown'}, {s['date']}, "
        f"{s['machine']['cpus']} CPUs", "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines) + "\n"


def write_outputs(result: BenchResult, json_path: Path | None, markdown_path: Path | None,
                  failures_path: Path | None) -> None:
    """Write the JSON report, the Markdown report and the failures to the paths given."""
    for path in (json_path, markdown_path, failures_path):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    if json_path:
        Path(json_path).write_text(json.dumps(result.report, ensure_ascii=False, indent=2) + "\n",
                                   encoding="utf-8")
    if markdown_path:
        Path(markdown_path).write_text(format_markdown(result.report), encoding="utf-8")
    if failures_path:
        Path(failures_path).write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in result.failures),
            encoding="utf-8")

