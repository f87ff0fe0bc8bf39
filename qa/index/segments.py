"""Segments: the articles indexed together in one update, stored once, never modified.

An index generation is a list of segments plus the ids of the articles each one
no longer serves (removed or replaced since). Adding articles writes one new
segment, whatever the size of the rest, and merging small or half-dead segments
into one keeps their number logarithmic (`merge_plan`). Vectors of chunks live in
the vector store, keyed by the `rows` stored here; the sentence vectors, which the
answerer reads a few at a time, stay in the segment as a memory-mapped array.

Files of `index/segments/seg-…/` (numpy arrays without pickle, and JSON):

    articles.json        article metadata with content and text hashes (no text)
    texts.bin            the articles' texts, UTF-8, one after the other
    arrays.npz           text offsets, chunk and sentence spans, chunk ids and rows
    sentences.npy        sentence vectors (float16)
    chunk_terms.npz      BM25 postings of the chunks (see `lexical`)
    sentence_terms.npz   postings of the sentences, for the answerer's term weights
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from qa.index.lexical import Postings
from qa.schema import Article, Chunk

# Merge policy: segments are grouped in tiers of MERGE_FACTOR× growing size, and
# MERGE_FACTOR segments of one tier become one of the next. Every chunk is thus
# rewritten once per tier (log of the corpus size), and an update that adds 1,000
# articles never rewrites an older, bigger segment.
MERGE_FACTOR = 8
TIER_BASE_CHUNKS = 1000
# A segment whose removed articles hold this share of its chunks is rewritten.
MAX_DEAD_SHARE = 0.5


@dataclass(frozen=True)
class Segment:
    """Articles with their chunks, sentences, sentence vectors and term postings."""

    name: str
    articles: tuple[Article, ...]
    content_hashes: tuple[str, ...]
    text_hashes: tuple[str, ...]
    chunk_article: np.ndarray  # int32 index into `articles`, ascending
    chunk_start: np.ndarray  # int32
    chunk_end: np.ndarray  # int32
    chunk_ids: np.ndarray  # str
    chunk_rows: np.ndarray  # int64 vector store ids
    sentence_article: np.ndarray  # int32, ascending
    sentence_start: np.ndarray  # int32
    sentence_end: np.ndarray  # int32
    sentence_vectors: np.ndarray  # float16, memory-mapped once written
    chunk_terms: Postings
    sentence_terms: Postings

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_rows)

    def chunk(self, local: int) -> Chunk:
        article = self.articles[self.chunk_article[local]]
        start, end = int(self.chunk_start[local]), int(self.chunk_end[local])
        return Chunk(str(self.chunk_ids[local]), article.id, start, end, article.text[start:end])

    def alive(self, dead: frozenset[str]) -> np.ndarray:
        """Boolean mask over `articles`: those not in `dead`."""
        return np.array([a.id not in dead for a in self.articles], dtype=bool)

    def live_chunks(self, dead: frozenset[str]) -> int:
        return int(self.alive(dead)[self.chunk_article].sum()) if self.n_chunks else 0

    # ------------------------------------------------------------ files

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        texts = [a.text.encode("utf-8") for a in self.articles]
        with open(folder / "texts.bin", "wb") as fh:
            fh.write(b"".join(texts))
        meta = [
            a.meta() | {"content_sha256": c, "text_sha256": t}
            for a, c, t in zip(self.articles, self.content_hashes, self.text_hashes, strict=True)
        ]
        (folder / "articles.json").write_text(json.dumps(meta, ensure_ascii=False),
                                              encoding="utf-8")
        with open(folder / "arrays.npz", "wb") as fh:
            np.savez(fh, text_offsets=np.cumsum([0] + [len(t) for t in texts], dtype=np.int64),
                     chunk_article=self.chunk_article, chunk_start=self.chunk_start,
                     chunk_end=self.chunk_end, chunk_ids=self.chunk_ids,
                     chunk_rows=self.chunk_rows, sentence_article=self.sentence_article,
                     sentence_start=self.sentence_start, sentence_end=self.sentence_end)
        np.save(folder / "sentences.npy", self.sentence_vectors, allow_pickle=False)
        self.chunk_terms.save(folder / "chunk_terms.npz")
        self.sentence_terms.save(folder / "sentence_terms.npz")

    @classmethod
    def read(cls, folder: Path) -> Segment:
        meta = json.loads((folder / "articles.json").read_text(encoding="utf-8"))
        blob = (folder / "texts.bin").read_bytes()
        with np.load(folder / "arrays.npz", allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        offsets = arrays.pop("text_offsets")
        articles, content, texts = [], [], []
        for i, row in enumerate(meta):
            content.append(row.pop("content_sha256"))
            texts.append(row.pop("text_sha256"))
            text = blob[offsets[i]:offsets[i + 1]].decode("utf-8")
            articles.append(Article(**row, text=text))
        return cls(
            name=folder.name, articles=tuple(articles), content_hashes=tuple(content),
            text_hashes=tuple(texts), **arrays,
            # Memory-mapped: a large corpus's sentence vectors stay on disk until read.
            sentence_vectors=np.load(folder / "sentences.npy", mmap_mode="r",
                                     allow_pickle=False),
            chunk_terms=Postings.load(folder / "chunk_terms.npz"),
            sentence_terms=Postings.load(folder / "sentence_terms.npz"),
        )


def merge(name: str, parts: Sequence[tuple[Segment, frozenset[str]]],
          moved_paths: dict[str, str]) -> Segment:
    """One segment holding the live articles of `parts` (segment, dead ids), in order,
    with the file paths of moved articles updated. Nothing is re-embedded: chunk rows
    and sentence vectors are carried over."""
    articles, content, texts = [], [], []
    chunk_cols: dict[str, list[np.ndarray]] = {k: [] for k in
                                               ("article", "start", "end", "ids", "rows")}
    sentence_cols: dict[str, list[np.ndarray]] = {k: [] for k in ("article", "start", "end")}
    vectors, chunk_terms, sentence_terms = [], [], []
    for segment, dead in parts:
        alive = segment.alive(dead)
        renumber = np.cumsum(alive) - 1 + len(articles)
        for i in np.flatnonzero(alive):
            article = segment.articles[i]
            moved = moved_paths.get(article.id)
            articles.append(replace(article, path=moved) if moved else article)
            content.append(segment.content_hashes[i])
            texts.append(segment.text_hashes[i])
        chunks = np.flatnonzero(alive[segment.chunk_article])
        chunk_cols["article"].append(renumber[segment.chunk_article[chunks]])
        chunk_cols["start"].append(segment.chunk_start[chunks])
        chunk_cols["end"].append(segment.chunk_end[chunks])
        chunk_cols["ids"].append(segment.chunk_ids[chunks])
        chunk_cols["rows"].append(segment.chunk_rows[chunks])
        chunk_terms.append((segment.chunk_terms, chunks))
        sentences = np.flatnonzero(alive[segment.sentence_article])
        sentence_cols["article"].append(renumber[segment.sentence_article[sentences]])
        sentence_cols["start"].append(segment.sentence_start[sentences])
        sentence_cols["end"].append(segment.sentence_end[sentences])
        vectors.append(np.asarray(segment.sentence_vectors[sentences], dtype=np.float16))
        sentence_terms.append((segment.sentence_terms, sentences))
    return Segment(
        name=name, articles=tuple(articles), content_hashes=tuple(content),
        text_hashes=tuple(texts),
        chunk_article=np.concatenate(chunk_cols["article"]).astype(np.int32),
        chunk_start=np.concatenate(chunk_cols["start"]).astype(np.int32),
        chunk_end=np.concatenate(chunk_cols["end"]).astype(np.int32),
        chunk_ids=np.concatenate(chunk_cols["ids"]),
        chunk_rows=np.concatenate(chunk_cols["rows"]).astype(np.int64),
        sentence_article=np.concatenate(sentence_cols["article"]).astype(np.int32),
        sentence_start=np.concatenate(sentence_cols["start"]).astype(np.int32),
        sentence_end=np.concatenate(sentence_cols["end"]).astype(np.int32),
        sentence_vectors=np.concatenate(vectors),
        chunk_terms=Postings.concat(chunk_terms),
        sentence_terms=Postings.concat(sentence_terms),
    )


def merge_plan(live_chunks: Sequence[int], total_chunks: Sequence[int]) -> list[list[int]]:
    """Groups of segment positions to merge, each group into one segment.

    A segment whose dead share reaches MAX_DEAD_SHARE is rewritten (alone, or with
    its tier); MERGE_FACTOR segments of one tier are merged; an empty one is dropped
    by any rewrite of it.
    """
    tiers: dict[int, list[int]] = {}
    for i, live in enumerate(live_chunks):
        tiers.setdefault(_tier(live), []).append(i)
    groups = []
    for members in tiers.values():
        if len(members) >= MERGE_FACTOR:
            groups.append(members)
            continue
        groups += [[i] for i in members
                   if total_chunks[i] and 1 - live_chunks[i] / total_chunks[i] >= MAX_DEAD_SHARE]
    return sorted(groups)


def _tier(live_chunks: int) -> int:
    if live_chunks <= TIER_BASE_CHUNKS:
        return 0
    return int(math.log(live_chunks / TIER_BASE_CHUNKS, MERGE_FACTOR)) + 1
