"""Articles → Qdrant points: the same chunks, sentences and vectors as the local index.

`fresh.new_segment` chunks, embeds and tokenises exactly as for the local store; this
module turns its columns into points (kinds and ids in `engine`) and makes the sparse
BM25 vectors.

The BM25 vector of a chunk: indices are our French analyzer's tokens (`bm25_tokens`:
stems, elisions, stop words, accent folding) hashed to 32 bits, values the BM25 term
frequency part, tf / (tf + k1·(1 - b + b·len/avgdl)), with `lexical`'s k1 and b. The
IDF is the engine's (`Modifier.IDF`, the same Lucene formula as `lexical`), computed
over the live chunks at query time, never a copy. `avgdl` is the mean length of the
chunks at the last full build, kept in the state point: an incremental update uses it
as it stands, so lengths are normalised against a slightly stale mean until the next
rebuild (the local store recomputes it live).

Hash collisions: two distinct tokens share an index with probability about V²/2³³ for
a vocabulary of V tokens: ≈ 1 pair for V = 93k, ≈ 116 pairs for V = 1M, each merging
two rare terms' statistics.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from qa import text as frtext
from qa.index.fresh import Fresh, article_hash, text_hash
from qa.index.lexical import K1, B
from qa.index.qdrant.engine import (
    ARTICLE,
    BM25,
    CHUNK,
    DENSE,
    SENTENCE,
    SENTENCE_KIND,
    point_id,
    qm,
)
from qa.schema import Article


def term_index(token: str) -> int:
    """A stable 32-bit index for an analyzer token (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little")


def document_terms(article: Article, chunk_text: str) -> list[str]:
    """The tokens BM25 sees for a chunk: its article's title, then its text, as the
    local index tokenises them."""
    return frtext.bm25_tokens(f"{article.title} {chunk_text}")


def sparse_document(tokens: Sequence[str], avgdl: float) -> qm.SparseVector:
    counts = Counter(term_index(t) for t in tokens)
    norm = K1 * (1 - B + B * len(tokens) / max(avgdl, 1e-9))
    indices = sorted(counts)
    return qm.SparseVector(indices=indices,
                           values=[counts[i] / (counts[i] + norm) for i in indices])


def sparse_query(tokens: Iterable[str]) -> qm.SparseVector:
    """A query's tokens, each weighing the times it is repeated (as in `lexical`)."""
    counts = Counter(term_index(t) for t in tokens)
    indices = sorted(counts)
    return qm.SparseVector(indices=indices, values=[float(counts[i]) for i in indices])


def article_point_id(article_id: str) -> str:
    return point_id(ARTICLE, article_id)


def chunk_point_id(article_id: str, content: str, number: int) -> str:
    return point_id(CHUNK, article_id, content, number)


def sentence_point_id(article_id: str, content: str, start: int, end: int) -> str:
    return point_id(SENTENCE_KIND, article_id, content, start, end)


def content_points(fresh: Fresh, avgdl: float) -> list[qm.PointStruct]:
    """The chunk and sentence points of a fresh segment's articles (not their article
    points, which are written last: they make these points live)."""
    seg = fresh.segment
    hashes = [article_hash(a) for a in seg.articles]
    points = []
    sentence_article = seg.sentence_article
    for local, (a, start, end) in enumerate(zip(seg.chunk_article, seg.chunk_start,
                                                seg.chunk_end, strict=True)):
        article, start, end = seg.articles[a], int(start), int(end)
        lo, hi = np.searchsorted(sentence_article, [a, a + 1])
        overlap = ((seg.sentence_start[lo:hi] < end) & (seg.sentence_end[lo:hi] > start))
        spans = [[int(s), int(e)] for s, e in zip(seg.sentence_start[lo:hi][overlap],
                                                  seg.sentence_end[lo:hi][overlap], strict=True)]
        number = local - int(np.searchsorted(seg.chunk_article, a))
        points.append(qm.PointStruct(
            id=chunk_point_id(article.id, hashes[a], number),
            vector={DENSE: fresh.vectors[local].astype(np.float32).tolist(),
                    BM25: sparse_document(document_terms(article, article.text[start:end]),
                                          avgdl)},
            payload={"kind": CHUNK, "article_id": article.id, "article_hash": hashes[a],
                     "chunk_id": str(seg.chunk_ids[local]), "number": number,
                     "start": start, "end": end, "sentences": spans,
                     "title": article.title, "source": article.source, "date": article.date,
                     "tag": article.tag, "language": article.language}))
    vectors = seg.sentence_vectors  # float16, as the local store keeps them
    for i, (a, start, end) in enumerate(zip(sentence_article, seg.sentence_start,
                                            seg.sentence_end, strict=True)):
        article, start, end = seg.articles[a], int(start), int(end)
        points.append(qm.PointStruct(
            id=sentence_point_id(article.id, hashes[a], start, end),
            vector={SENTENCE: vectors[i].astype(np.float32).tolist()},
            payload={"kind": SENTENCE_KIND, "article_id": article.id,
                     "article_hash": hashes[a], "start": start, "end": end,
                     "terms": sorted(set(frtext.bm25_tokens(article.text[start:end])))}))
    return points


def article_points(fresh: Fresh) -> list[qm.PointStruct]:
    counts = np.bincount(fresh.segment.chunk_article, minlength=len(fresh.segment.articles))
    return [article_point(a, int(n)) for a, n in zip(fresh.segment.articles, counts,
                                                     strict=True)]


def article_point(article: Article, n_chunks: int) -> qm.PointStruct:
    return qm.PointStruct(id=article_point_id(article.id), vector={}, payload={
        "kind": ARTICLE, "article_id": article.id, "article_hash": article_hash(article),
        "text_hash": text_hash(article.text), "n_chunks": n_chunks,
        **{k: v for k, v in article.meta().items() if k != "id"}, "text": article.text})


def article_of(payload: dict) -> Article:
    return Article(id=payload["article_id"], title=payload["title"], text=payload["text"],
                   source=payload["source"], date=payload["date"], tag=payload["tag"],
                   language=payload["language"], url=payload["url"], path=payload["path"])
