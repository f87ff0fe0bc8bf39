"""Dense, BM25 and hybrid search in Qdrant: one Query API call each.

Hybrid is two prefetches, the e5 vector and the BM25 sparse vector (IDF applied by
the engine), fused by reciprocal rank fusion in the engine with our `rrf_k`: a chunk
scores sum(1 / (rrf_k + rank)), as `qa.answering.retrieval.fuse` does for the local
store. The engine returns the fused order only, so hybrid hits carry no per-retriever
score or rank (the local store's do).
"""

from __future__ import annotations

import numpy as np

from qa import text as frtext
from qa.index.qdrant.engine import BM25, DENSE, qm
from qa.index.qdrant.points import sparse_query
from qa.index.qdrant.view import QdrantIndex
from qa.schema import Chunk, Hit

_PAYLOAD = ["article_id", "article_hash", "chunk_id", "start", "end"]
# Chunks asked beyond `k`, in case some belong to an article an update is rewriting
# at this very moment (those are skipped, see `view`).
_SPARE = 5


def search_hits(index: QdrantIndex, query: str, query_vector: np.ndarray | None, *, k: int,
                retriever: str, candidates: int, rrf_k: int) -> list[Hit]:
    """Top-`k` hits, in the order the engine ranks them."""
    pool = max(k, candidates)
    tokens = frtext.bm25_tokens(query) if retriever != "dense" else []
    dense = None
    if retriever != "bm25":
        if query_vector is None:
            raise ValueError("dense and hybrid search need the question's embedding")
        dense = np.asarray(query_vector, dtype=np.float32).ravel().tolist()
    if retriever == "bm25" and not tokens:
        return []
    if retriever == "hybrid":
        prefetch = [qm.Prefetch(query=dense, using=DENSE, limit=pool)]
        if tokens:
            prefetch.append(qm.Prefetch(query=sparse_query(tokens), using=BM25, limit=pool))
        # The engine numbers ranks from 0 (1 / (k + rank0)), we from 1: k + 1 is our rrf_k.
        request = {"prefetch": prefetch, "query": qm.RrfQuery(rrf=qm.Rrf(k=rrf_k + 1))}
    elif retriever == "dense":
        request = {"query": dense, "using": DENSE}
    else:
        request = {"query": sparse_query(tokens), "using": BM25}
    limit = pool if retriever != "hybrid" else k + _SPARE
    with index.engine.serial():
        points = index.engine.client.query_points(index.collection, limit=limit,
                                                  with_payload=_PAYLOAD, **request).points
    articles = index.articles.fetch([p.payload["article_id"] for p in points])
    stale = [p.payload["article_id"] for p in points if p.payload["article_id"] in articles
             and articles[p.payload["article_id"]][1] != p.payload["article_hash"]]
    if stale:  # cached before another process updated it: read it again
        index.articles.forget(stale)
        articles |= index.articles.fetch(stale)
    hits = []
    for rank, point in enumerate(points, start=1):
        row = point.payload
        found = articles.get(row["article_id"])
        if found is None or found[1] != row["article_hash"]:
            continue  # its article is being rewritten or removed right now
        article = found[0]
        chunk = Chunk(row["chunk_id"], article.id, row["start"], row["end"],
                      article.text[row["start"]:row["end"]])
        score = float(point.score)
        if retriever == "dense":
            hits.append(Hit(chunk, article, score, dense_score=score, dense_rank=rank))
        elif retriever == "bm25":
            hits.append(Hit(chunk, article, score, bm25_score=score, bm25_rank=rank))
        else:
            hits.append(Hit(chunk, article, score))
        if len(hits) == k:
            break
    return hits
