"""The index in Qdrant as the answerers read it: `QdrantIndex`, and its `Focus` per question.

A `QdrantIndex` holds no corpus in memory: it reads through the alias, so a full
rebuild switched in by another process is seen at the next question. Articles are
fetched by id (and kept in a bounded cache), lists of all articles are scrolled on
demand. A chunk counts only while its article point carries the same content hash:
an update writes an article's chunks and sentences first and its article point last,
so a reader never quotes a chunk against the wrong text.

The answerers number sentences by position (`sentences_in`, `sentence_vectors`, …);
`focus(hits)` gives them a small snapshot holding just the hits' articles and
sentences, with their vectors read back from the engine and the sentence-level
document frequencies counted there (an indexed payload filter), cached per snapshot.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from qa import text as frtext
from qa.index.fresh import article_hash
from qa.index.manifest import Manifest
from qa.index.qdrant.engine import (
    ARTICLE,
    CHUNK,
    SENTENCE,
    SENTENCE_KIND,
    Engine,
    count,
    kind_is,
    qm,
)
from qa.index.qdrant.points import article_of, article_point_id, sentence_point_id
from qa.schema import Article, Chunk, Hit

_ARTICLE_CACHE = 4096  # articles kept per snapshot (texts of the last answers' sources)
_PAGE = 512
_KEYS = ["article_id", "article_hash", "text_hash", "n_chunks"]


def scroll(engine: Engine, collection: str, kind: str, payload) -> Iterator[object]:
    """Every point of one kind, page by page, without vectors."""
    offset = None
    while True:
        with engine.serial():
            page, offset = engine.client.scroll(
                collection, scroll_filter=qm.Filter(must=[kind_is(kind)]), limit=_PAGE,
                offset=offset, with_payload=payload, with_vectors=False)
        yield from page
        if offset is None:
            return


class Articles(Mapping):
    """Article id → `Article`, read from the engine: by id with a cache, or scrolled."""

    def __init__(self, engine: Engine, collection: str):
        self._engine, self._collection = engine, collection
        self._cache: OrderedDict[str, tuple[Article, str]] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(self, ids: Sequence[str]) -> dict[str, tuple[Article, str]]:
        """(article, content hash) of each of `ids` the engine holds."""
        with self._lock:
            found = {i: self._cache[i] for i in ids if i in self._cache}
        missing = [i for i in dict.fromkeys(ids) if i not in found]
        if missing:
            with self._engine.serial():
                records = self._engine.client.retrieve(
                    self._collection, [article_point_id(i) for i in missing],
                    with_payload=True, with_vectors=False)
            with self._lock:
                for record in records:
                    entry = (article_of(record.payload), record.payload["article_hash"])
                    found[entry[0].id] = self._cache[entry[0].id] = entry
                while len(self._cache) > _ARTICLE_CACHE:
                    self._cache.popitem(last=False)
        return found

    def forget(self, ids: Sequence[str]) -> None:
        with self._lock:
            for i in ids:
                self._cache.pop(i, None)

    def __getitem__(self, article_id: str) -> Article:
        found = self.fetch([article_id]).get(article_id)
        if found is None:
            raise KeyError(article_id)
        return found[0]

    def __contains__(self, article_id: object) -> bool:
        return isinstance(article_id, str) and article_id in self.fetch([article_id])

    def __iter__(self) -> Iterator[str]:
        return (p.payload["article_id"] for p in scroll(self._engine, self._collection, ARTICLE,
                                                        ["article_id"]))

    def __len__(self) -> int:
        return count(self._engine, self._collection, kind_is(ARTICLE))

    def values(self) -> Iterator[Article]:  # scrolled page by page, not one call each
        for point in scroll(self._engine, self._collection, ARTICLE, True):
            article = article_of(point.payload)
            with self._lock:
                self._cache[article.id] = (article, point.payload["article_hash"])
                if len(self._cache) > _ARTICLE_CACHE:
                    self._cache.popitem(last=False)
            yield article

    def items(self) -> Iterator[tuple[str, Article]]:
        return ((a.id, a) for a in self.values())


@dataclass
class QdrantIndex:
    """The index in a Qdrant collection (through its alias), read by searches."""

    engine: Engine
    collection: str  # the alias
    manifest: Manifest
    avgdl: float
    articles: Articles = field(init=False)

    def __post_init__(self) -> None:
        self.articles = Articles(self.engine, self.collection)
        self._frequencies: dict[str, int] = {}

    kind = "qdrant"

    @property
    def n_chunks(self) -> int:
        return count(self.engine, self.collection, kind_is(CHUNK))

    def _article_rows(self) -> list[dict]:
        return [p.payload for p in scroll(self.engine, self.collection, ARTICLE, _KEYS)]

    @property
    def article_hashes(self) -> dict[str, str]:
        return {r["article_id"]: r["article_hash"] for r in self._article_rows()}

    @property
    def text_hashes(self) -> dict[str, str]:
        return {r["text_hash"]: r["article_id"] for r in self._article_rows()}

    @cached_property
    def passage_counts(self) -> dict[str, int]:
        return {r["article_id"]: int(r["n_chunks"]) for r in self._article_rows()}

    @cached_property
    def chunks(self) -> list[Chunk]:
        """Every live chunk, article by article (a full scan: for `qa bench`, not answers)."""
        texts = {a.id: (a.text, article_hash(a)) for a in self.articles.values()}
        rows = [p.payload for p in scroll(self.engine, self.collection, CHUNK,
                                          ["article_id", "article_hash", "chunk_id", "number",
                                           "start", "end"])]
        rows = [r for r in rows if texts.get(r["article_id"], ("", None))[1] == r["article_hash"]]
        rows.sort(key=lambda r: (r["article_id"], r["number"]))
        return [Chunk(r["chunk_id"], r["article_id"], r["start"], r["end"],
                      texts[r["article_id"]][0][r["start"]:r["end"]]) for r in rows]

    def search_hits(self, query: str, query_vector: np.ndarray | None, *, k: int,
                    retriever: str, candidates: int, rrf_k: int) -> list[Hit]:
        from qa.index.qdrant.search import search_hits

        return search_hits(self, query, query_vector, k=k, retriever=retriever,
                           candidates=candidates, rrf_k=rrf_k)

    def sentence_count(self) -> int:
        if "\x00n" not in self._frequencies:
            self._frequencies["\x00n"] = count(self.engine, self.collection,
                                               kind_is(SENTENCE_KIND))
        return self._frequencies["\x00n"]

    def sentence_frequency(self, term: str) -> int:
        """Sentences using `term`, counted by the engine (once per snapshot and term)."""
        found = self._frequencies.get(term)
        if found is None:
            found = self._frequencies[term] = count(
                self.engine, self.collection, kind_is(SENTENCE_KIND),
                qm.FieldCondition(key="terms", match=qm.MatchValue(value=term)))
        return found

    def focus(self, hits: Sequence[Hit]) -> Focus:
        """What the answerers read about `hits`, numbered from 0."""
        spans, by_article = [], {}
        for hit in hits:
            aid = hit.article.id
            if aid not in by_article:
                by_article[aid] = hit.article
                spans += [(aid, s, e) for s, e in frtext.split_sentences(hit.article.text)]
        ids = [sentence_point_id(aid, article_hash(by_article[aid]), s, e)
               for aid, s, e in spans]
        with self.engine.serial():
            records = self.engine.client.retrieve(self.collection, ids, with_payload=False,
                                                  with_vectors=[SENTENCE]) if ids else []
        vectors = {str(r.id): r.vector[SENTENCE] for r in records}
        kept = [(span, vectors[i]) for span, i in zip(spans, ids, strict=True) if i in vectors]
        dim = self.manifest.shape.embedding.dim
        matrix = (np.asarray([v for _, v in kept], dtype=np.float32) if kept
                  else np.zeros((0, dim), np.float32))
        return Focus(by_article, [span for span, _ in kept], matrix, self)


class FocusTerms:
    """`LexicalIndex`'s answers for the answerer's term weights: corpus-wide counts from
    the engine, positions among the focused sentences."""

    def __init__(self, focus: Focus, index: QdrantIndex):
        self._index = index
        self.n_docs = index.sentence_count()
        self._having: dict[str, list[int]] = {}
        for position in range(len(focus.sentence_spans)):
            for term in set(frtext.bm25_tokens(focus.sentence_text(position))):
                self._having.setdefault(term, []).append(position)

    def document_frequency(self, term: str) -> int:
        return self._index.sentence_frequency(term)

    def documents_with(self, term: str) -> np.ndarray:
        return np.asarray(self._having.get(term, []), dtype=np.int64)


class Focus:
    """The hits' articles and sentences, as the `Index` of the answerers' interface."""

    def __init__(self, articles: dict[str, Article], spans: list[tuple[str, int, int]],
                 vectors: np.ndarray, index: QdrantIndex):
        self.articles = articles
        self.sentence_spans = spans
        self.sentence_vectors = vectors
        self._where: dict[str, list[int]] = {}
        for position, (aid, _, _) in enumerate(spans):
            self._where.setdefault(aid, []).append(position)
        self._index = index

    @cached_property
    def sentence_terms(self) -> FocusTerms:
        return FocusTerms(self, self._index)

    def sentences_in(self, chunk: Chunk) -> list[int]:
        return [p for p in self._where.get(chunk.article_id, [])
                if self.sentence_spans[p][1] < chunk.end
                and self.sentence_spans[p][2] > chunk.start]

    def sentence_text(self, position: int) -> str:
        article_id, start, end = self.sentence_spans[position]
        return self.articles[article_id].text[start:end]
