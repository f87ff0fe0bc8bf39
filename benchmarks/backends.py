"""Inference backends side by side: `python -m benchmarks.backends`.

Encodes the same texts with every backend (`QA_BACKEND`: torch, ONNX Runtime,
OpenVINO, fp32 or int8) in one run, round after round with the order rotated, so
that a busy moment of this shared machine falls on all of them alike; prints the
median of the rounds and the ratio to torch fp32. Each measure runs in a process of
its own, as the assistant does: torch's OpenMP threads and OpenVINO's TBB threads
spinning in one process slowed torch fivefold, which would flatter the others.

- passages: PIAF v1.0 contexts encoded in batches, texts per second;
- queries: PIAF questions encoded one at a time, as `answer()` does, p50 in ms;
- reader: one reading of a question with `QA_RERANK_DEPTH` passages of one window
  each (the contexts of its article cut to the window, as the answerer cuts
  chunks), p50 in ms;
- agreement: the lowest cosine between each backend's passage vectors and torch
  fp32's, and the share of reader passes whose best passage and span agree with
  torch fp32's.

Quality on the benchmark's questions is `qa bench` with `QA_BACKEND` set.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import statistics
import time
from pathlib import Path

import click
import numpy as np

from qa.config import BACKENDS, Settings
from qa.embeddings.embedder import load_embedder
from qa.reader import Reader

ROOT = Path(__file__).resolve().parents[1]
PIAF = ROOT / "evals" / "piaf" / "piaf-v1.0.json"
TORCH = "torch"


def piaf_samples(n_passages: int, n_queries: int, n_readings: int, depth: int, seed: int):
    """(contexts, questions, [(question, contexts of its article)]) drawn from PIAF."""
    data = json.loads(PIAF.read_text(encoding="utf-8"))["data"]
    contexts, questions, readings = [], [], []
    for article in data:
        texts = [p["context"] for p in article["paragraphs"]]
        contexts += texts
        for i, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                questions.append(qa["question"])
                others = [t for j, t in enumerate(texts) if j != i][: depth - 1]
                readings.append((qa["question"], [texts[i], *others]))
    rng = random.Random(seed)
    return (rng.sample(contexts, n_passages), rng.sample(questions, n_queries),
            rng.sample(readings, n_readings))


def one_window(reader: Reader, question: str, passage: str) -> str:
    """The start of `passage` that fits in one reader window beside `question`."""
    budget = reader.passage_budget(question)
    offsets = reader.tokenizer(passage, add_special_tokens=False,
                               return_offsets_mapping=True)["offset_mapping"]
    return passage if len(offsets) <= budget else passage[: offsets[budget - 1][1]]


def _ms(run) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1000


def measure(backend: str, precision: str, threads: int, samples) -> dict:
    """One round of one backend, in the calling process: throughput, latency, outputs."""
    contexts, questions, pairs = samples
    settings = Settings.from_env(backend=backend, threads=threads or None)
    reader = Reader.load(settings.cache_dir, precision=precision, backend=backend,
                         n_threads=settings.threads)
    pairs = [(q, [one_window(reader, q, p) for p in ps]) for q, ps in pairs]
    row = {}
    if precision == "fp32":
        embedder = load_embedder(settings)
        embedder.encode(contexts[:8], "passage")  # warm-up: first calls allocate
        embedder.encode(questions[:3], "query")
        seconds = _ms(lambda: embedder.encode(contexts, "passage")) / 1000
        row["passages_per_s"] = len(contexts) / seconds
        row["query_p50_ms"] = statistics.median(
            _ms(lambda q=q: embedder.encode([q], "query")) for q in questions)
        row["vectors"] = embedder.encode(contexts, "passage")
    reader.read(*pairs[0])
    row["reader_p50_ms"] = statistics.median(_ms(lambda p=p: reader.read(*p)) for p in pairs)
    row["readings"] = [reader.read(*p) for p in pairs]
    return row


@click.command()
@click.option("--backend", "backends", multiple=True, type=click.Choice(BACKENDS),
              help="Backends to compare (default: all); torch fp32 is always measured.")
@click.option("--rounds", default=3, show_default=True)
@click.option("--passages", default=256, show_default=True)
@click.option("--queries", default=100, show_default=True)
@click.option("--readings", default=20, show_default=True)
@click.option("--threads", default=0, show_default=True, help="0: every core.")
@click.option("--json", "json_path", type=click.Path(path_type=Path))
def main(backends, rounds, passages, queries, readings, threads, json_path):
    """Throughput and latency of each backend, side by side."""
    depth = Settings.from_env().rerank_depth
    samples = piaf_samples(passages, queries, readings, depth, seed=7)
    runs = [(TORCH, "fp32")] + [(b, "fp32") for b in (backends or BACKENDS) if b != TORCH]
    runs.insert(1, (TORCH, "bf16"))  # the reader's torch default
    measured: dict[str, list[dict]] = {}
    spawn = multiprocessing.get_context("spawn")
    for turn in range(rounds):
        for backend, precision in runs[turn % len(runs):] + runs[: turn % len(runs)]:
            name = backend if precision == "fp32" else f"{backend}-{precision}"
            with spawn.Pool(1) as pool:
                row = pool.apply(measure, (backend, precision, threads, samples))
            measured.setdefault(name, []).append(row)
            click.echo(f"tour {turn + 1}/{rounds} : {name}", err=True)
    report = _report(measured)
    base = report[TORCH]
    click.echo(f"{rounds} tours, {passages} passages, {queries} questions, {readings} lectures "
               f"de {depth} passages ; médianes des tours")
    click.echo("| backend | passages/s | × torch | query p50 ms | reader p50 ms | × torch |"
               " min cosine | reader agrees |")
    click.echo("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, m in report.items():
        cells = "– | – | –"
        if "passages_per_s" in m:
            ratio = m["passages_per_s"] / base["passages_per_s"]
            cells = f"{m['passages_per_s']:.1f} | {ratio:.2f} | {m['query_p50_ms']:.1f}"
        cosine = f"{m['min_cosine']:.4f}" if "min_cosine" in m else "–"
        click.echo(f"| {name} | {cells} | {m['reader_p50_ms']:.0f} | "
                   f"{base['reader_p50_ms'] / m['reader_p50_ms']:.2f} | {cosine} | "
                   f"{m['reader_agreement']:.2f} |")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({
            "rounds": rounds, "passages": passages, "queries": queries, "readings": readings,
            "depth": depth, "medians": report,
            "measured": {n: [{k: v for k, v in r.items() if k not in ("vectors", "readings")}
                             for r in rows] for n, rows in measured.items()}}, indent=2))


def _report(measured: dict[str, list[dict]]) -> dict[str, dict]:
    """Medians over the rounds, and agreement with torch fp32's first round."""
    reference = measured[TORCH][0]
    report = {}
    for name, rows in measured.items():
        medians = {k: statistics.median(r[k] for r in rows)
                   for k in ("passages_per_s", "query_p50_ms", "reader_p50_ms") if k in rows[0]}
        if "vectors" in rows[0]:
            medians["min_cosine"] = float((rows[0]["vectors"] * reference["vectors"]).sum(1).min())
        medians["reader_agreement"] = _agreement(rows[0]["readings"], reference["readings"])
        report[name] = medians
    return report


def _agreement(readings, reference) -> float:
    """Share of passes whose most relevant passage and its span match `reference`'s."""
    same = 0
    for got, ref in zip(readings, reference, strict=True):
        top, ref_top = (int(np.argmax([r.relevance for r in rs])) for rs in (got, ref))
        same += top == ref_top and (got[top].start, got[top].end) == (ref[top].start,
                                                                      ref[top].end)
    return same / len(reference)


if __name__ == "__main__":
    main()
