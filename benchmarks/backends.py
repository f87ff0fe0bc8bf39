"""Inference backends side by side: `python -m benchmarks.backends`.

Encodes the same texts with every backend (`QA_BACKEND`: torch, ONNX Runtime,
OpenVINO, fp32 or int8) in one run, round after round with the order rotated, so
that a busy moment of this shared machine falls on all of them alike; prints the
median of the rounds and the ratio to torch fp32:

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
    settings = Settings.from_env(threads=threads or None)
    names = [TORCH] + [b for b in (backends or BACKENDS) if b != TORCH]
    contexts, questions, pairs = piaf_samples(passages, queries, readings,
                                              settings.rerank_depth, seed=7)
    embedders = {b: load_embedder(Settings.from_env(backend=b, threads=threads or None))
                 for b in names}
    readers = {b: Reader.load(settings.cache_dir, backend=b, n_threads=settings.threads)
               for b in names}
    readers["torch-bf16"] = Reader.load(settings.cache_dir, precision="bf16",
                                        n_threads=settings.threads)
    cut = readers[TORCH]
    pairs = [(q, [one_window(cut, q, p) for p in ps]) for q, ps in pairs]
    for b in names:  # warm-up: first calls allocate
        embedders[b].encode(contexts[:8], "passage")
        embedders[b].encode(questions[:3], "query")
    for reader in readers.values():
        reader.read(*pairs[0])

    measured: dict[str, dict[str, list[float]]] = {}
    for turn in range(rounds):
        order = names[turn % len(names):] + names[: turn % len(names)]
        for b in order:
            row = measured.setdefault(b, {"passages_per_s": [], "query_p50_ms": []})
            seconds = _ms(lambda b=b: embedders[b].encode(contexts, "passage")) / 1000
            row["passages_per_s"].append(len(contexts) / seconds)
            row["query_p50_ms"].append(statistics.median(
                _ms(lambda b=b, q=q: embedders[b].encode([q], "query")) for q in questions))
        for b in (order + ["torch-bf16"]):
            row = measured.setdefault(b, {})
            row.setdefault("reader_p50_ms", []).append(statistics.median(
                _ms(lambda b=b, p=p: readers[b].read(*p)) for p in pairs))
        click.echo(f"tour {turn + 1}/{rounds} fait", err=True)

    reference = embedders[TORCH].encode(contexts, "passage")
    ref_readings = [readers[TORCH].read(*p) for p in pairs]
    report = {}
    for b, row in measured.items():
        medians = {k: statistics.median(v) for k, v in row.items()}
        if b in embedders:
            vectors = embedders[b].encode(contexts, "passage")
            medians["min_cosine"] = float((vectors * reference).sum(1).min())
        medians["reader_agreement"] = _agreement(readers[b], pairs, ref_readings)
        report[b] = medians
    base = report[TORCH]
    click.echo("| backend | passages/s | × torch | query p50 ms | reader p50 ms | × torch |"
               " min cosine | reader agrees |")
    click.echo("|---|---:|---:|---:|---:|---:|---:|---:|")
    for b, m in report.items():
        passages_cell = "– | – | –"
        if "passages_per_s" in m:
            ratio = m["passages_per_s"] / base["passages_per_s"]
            passages_cell = f"{m['passages_per_s']:.1f} | {ratio:.2f} | {m['query_p50_ms']:.1f}"
        click.echo(f"| {b} | {passages_cell} | {m['reader_p50_ms']:.0f} | "
                   f"{base['reader_p50_ms'] / m['reader_p50_ms']:.2f} | "
                   f"{m.get('min_cosine', float('nan')):.4f} | {m['reader_agreement']:.2f} |")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"rounds": rounds, "passages": passages,
                                         "queries": queries, "readings": readings,
                                         "depth": settings.rerank_depth,
                                         "measured": measured, "medians": report}, indent=2))


def _agreement(reader: Reader, pairs, reference) -> float:
    """Share of passes whose most relevant passage and its span match `reference`'s."""
    same = 0
    for pair, ref in zip(pairs, reference, strict=True):
        got = reader.read(*pair)
        top, ref_top = (int(np.argmax([r.relevance for r in rs])) for rs in (got, ref))
        same += top == ref_top and (got[top].start, got[top].end) == (ref[top].start,
                                                                      ref[top].end)
    return same / len(pairs)


if __name__ == "__main__":
    main()
