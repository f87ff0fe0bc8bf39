"""Dense, BM25 and hybrid search over a loaded `Index`, returning `Hit`s.

Hybrid fuses the two rankings by reciprocal rank fusion (RRF): a chunk scores
sum(1 / (rrf_k + rank)) over the retrievers that found it. RRF needs no score
calibration between cosine and BM25, which live on unrelated scales. An index in
Qdrant is searched by the engine, fusion included (`qa.index.qdrant.search`), with
the same formula and `rrf_k`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qa import text as frtext
from qa.config import RETRIEVERS
from qa.index.view import Index
from qa.schema import Hit

if TYPE_CHECKING:  # qdrant-client is imported only where QA_STORE=qdrant asks for it
    from qa.index.qdrant.view import QdrantIndex


@dataclass(frozen=True)
class Ranked:
    """One retriever's ranking: chunk positions and scores, best first."""

    ids: list[int]
    scores: list[float]


def dense_search(index: Index, query_vector: np.ndarray, k: int) -> Ranked:
    k = min(k, index.n_chunks)
    if k <= 0:
        return Ranked([], [])
    scores, rows = index.store.search(query_vector.reshape(1, -1).astype(np.float32), k)
    pairs = [(index.chunk_position(r), float(s))
             for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
    return Ranked([p for p, _ in pairs if p is not None], [s for p, s in pairs if p is not None])


def bm25_search(index: Index, query: str, k: int) -> Ranked:
    tokens = frtext.bm25_tokens(query)
    k = min(k, index.n_chunks)
    if not tokens or k <= 0:
        return Ranked([], [])
    positions, scores = index.bm25.search(tokens, k)
    return Ranked(positions.tolist(), scores.tolist())


def fuse(rankings: list[Ranked], rrf_k: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of several rankings, best first (ties: first ranking wins)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk in enumerate(ranking.ids, start=1):
            fused[chunk] = fused.get(chunk, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: -item[1])


def search(
    index: Index | QdrantIndex,
    query: str,
    query_vector: np.ndarray | None,
    *,
    k: int,
    retriever: str = "hybrid",
    candidates: int = 50,
    rrf_k: int = 60,
) -> list[Hit]:
    """Top-`k` hits for `query`. `query_vector` is required unless retriever is bm25."""
    if retriever not in RETRIEVERS:
        raise ValueError(f"unknown retriever {retriever!r}; choose one of {', '.join(RETRIEVERS)}")
    if not isinstance(index, Index):  # a Qdrant collection searches itself
        return index.search_hits(query, query_vector, k=k, retriever=retriever,
                                 candidates=candidates, rrf_k=rrf_k)
    pool = max(k, candidates)
    dense = dense_search(index, query_vector, pool) if retriever != "bm25" else Ranked([], [])
    bm25 = bm25_search(index, query, pool) if retriever != "dense" else Ranked([], [])
    if retriever == "dense":
        order = list(zip(dense.ids, dense.scores, strict=True))
    elif retriever == "bm25":
        order = list(zip(bm25.ids, bm25.scores, strict=True))
    else:
        order = fuse([dense, bm25], rrf_k)
    dense_at = {
        c: (r, s) for r, (c, s) in enumerate(zip(dense.ids, dense.scores, strict=True), start=1)
    }
    bm25_at = {
        c: (r, s) for r, (c, s) in enumerate(zip(bm25.ids, bm25.scores, strict=True), start=1)
    }
    hits = []
    for chunk_pos, score in order[:k]:
        chunk = index.chunks[chunk_pos]
        d_rank, d_score = dense_at.get(chunk_pos, (None, None))
        b_rank, b_score = bm25_at.get(chunk_pos, (None, None))
        hits.append(
            Hit(chunk, index.articles[chunk.article_id], score, d_score, b_score, d_rank, b_rank)
        )
    return hits
