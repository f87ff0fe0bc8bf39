"""The data of the scale benchmark: synthetic worlds of e5-like passage vectors, the
data sets drawn from them, and the PIAF texts of the check on real vectors.

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
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa import text as frtext

DIM = 384
DATA_SETS = ("mixed", "clustered")
INCREMENT_ARTICLES = 1000
INCREMENT_CHUNKS_PER_ARTICLE = 3
PIAF = Path(__file__).resolve().parents[1] / "evals" / "piaf" / "piaf-v1.0.json"
# Vectors drawn per block, so that a 1M-vector sample never holds its temporaries at once.
_BLOCK = 65_536
_WORLD_SEED = 7
# Variance of axis i decays as (i + 1) ** -_SPECTRUM_DECAY: e5's top 50 principal
# axes hold ~47% of the variance around the mean, and so do these vectors.
_SPECTRUM_DECAY = 0.6
_QUERY_NOISE = 0.2


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
    """One data set: the vectors to index and the queries held out of their articles."""

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

