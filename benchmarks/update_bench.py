"""End-to-end cost of an incremental update, apart from the embedding model.

`python -m benchmarks.update_bench --base 2000,20000 --add 250,1000,4000` builds an index of
short synthetic French articles (5 chunks each) through the real `index.update`, then
times what `qa add FILE` does with a file of each `--add` batch in turn (`add_paths`:
corpus check, copy, chunking, BM25 postings, vector store, segment and generation
written and swapped, merges when due), then `qa remove` of 100 added articles. The embedder
is the stand-in of `benchmarks/stand_in.py`, which hashes texts to unit vectors, so the
figures isolate the index's own work; the real model's cost is proportional to the new
texts only, since unchanged articles are never re-embedded (`tests/test_updates.py`
counts them).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from benchmarks.stand_in import HashEmbedder
from qa.config import Settings
from qa.corpus import load_corpus
from qa.index.updates import add_paths, remove_articles
from qa.index.writer import update

_WORDS = [
    "presse", "régionale", "enquête", "parquet", "plateforme", "ministre", "article",
    "tribunal", "réseau", "social", "justice", "député", "amende", "suspension", "contenu",
    "numérique", "commission",
]


def _article(i: int) -> dict:
    rng = np.random.default_rng(i)
    sentences = [
        " ".join(rng.choice(_WORDS, 12)).capitalize() + f" numéro {i}-{s}." for s in range(9)
    ]
    return {"id": f"a{i}", "title": f"Article {i}", "text": " ".join(sentences)}


def _write(path: Path, start: int, count: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(start, start + count):
            fh.write(json.dumps(_article(i), ensure_ascii=False) + "\n")


def measure(base_articles: int, batches: list[int], folder: Path) -> list[dict]:
    """Build a base index, then time `qa add` of each batch in turn and a removal."""
    # 40-token chunks: each 9-sentence article gives 5 chunks.
    settings = Settings(
        corpus_dir=folder / "corpus", index_dir=folder / "index", chunk_tokens=40, chunk_overlap=0
    )
    settings.corpus_dir.mkdir(parents=True)
    _write(settings.corpus_dir / "base.jsonl", 0, base_articles)
    embedder = HashEmbedder()
    started = time.perf_counter()
    index, _ = update(settings, embedder, load_corpus(settings.corpus_dir))
    rows = [{"base_chunks": index.n_chunks, "build_s": round(time.perf_counter() - started, 2),
             "store": index.store.kind}]
    first = base_articles
    for size in batches:
        _write(folder / f"added-{first}.jsonl", first, size)
        before = index.n_chunks
        started = time.perf_counter()
        index, result = add_paths(settings, embedder, [folder / f"added-{first}.jsonl"])
        rows.append({"base_chunks": before, "added_articles": len(result.report.added),
                     "added_chunks": result.report.embedded_chunks,
                     "add_s": round(time.perf_counter() - started, 2),
                     "segments": len(index.segments), "store": index.store.kind})
        first += size
    gone = [f"a{i}" for i in range(base_articles, base_articles + min(first - base_articles,
                                                                        100))]
    started = time.perf_counter()
    index, _ = remove_articles(settings, embedder, gone)
    rows.append({"base_chunks": index.n_chunks + 5 * len(gone), "removed_articles": len(gone),
                 "remove_s": round(time.perf_counter() - started, 2)})
    return rows


@click.command("update-bench")
@click.option(
    "--base",
    default="2000,20000",
    show_default=True,
    help="Comma-separated sizes of the existing corpus, in articles (5 chunks each).",
)
@click.option("--add", "added", default="1000", show_default=True,
              help="Comma-separated sizes of the batches of articles added one after another.")
def update_bench_command(base: str, added: str) -> None:
    """Time adding batches of articles to indexes of several sizes, model cost excluded."""
    batches = [int(s) for s in added.split(",")]
    for size in (int(s) for s in base.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            for row in measure(size, batches, Path(tmp)):
                click.echo(json.dumps(row))


if __name__ == "__main__":
    update_bench_command()
