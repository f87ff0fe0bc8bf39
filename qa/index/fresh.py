"""A new segment from new articles: chunks, sentences, their vectors and BM25 postings.

The only place where the embedding model runs during an update, on the new or
changed articles alone; the content hashes computed here are what later updates
compare to tell an unchanged article from an edited one, and a duplicate from a new one.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qa import text as frtext
from qa.config import Settings
from qa.embeddings import Embedder
from qa.index.chunking import chunk_articles
from qa.index.lexical import Postings
from qa.index.segments import Segment
from qa.schema import Article

# Texts per call to the embedder: the granularity of progress reports.
_ENCODE_BATCH = 256

Progress = Callable[[int, int], object]  # (texts embedded so far, texts to embed)


def article_hash(article: Article) -> str:
    """Changes whenever anything indexed about the article changes."""
    return hashlib.sha256(json.dumps(article.meta() | {"text": article.text, "path": ""},
                                     sort_keys=True).encode()).hexdigest()


def text_hash(text: str) -> str:
    """Identifies an article's content, whatever its file or id (for deduplication)."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


@dataclass(frozen=True)
class Fresh:
    segment: Segment
    vectors: np.ndarray  # chunk vectors, for the vector store


def new_segment(articles: list[Article], first_row: int, settings: Settings,
                 embedder: Embedder, progress: bool, on_progress: Progress | None) -> Fresh:
    """Chunk, embed and tokenise new articles into a segment (not yet written)."""
    chunks = chunk_articles(articles, embedder.count_tokens, settings.chunk_tokens,
                            settings.chunk_overlap)
    number = {a.id: i for i, a in enumerate(articles)}
    spans = [(number[a.id], s, e) for a in articles for s, e in frtext.split_sentences(a.text)]
    sentences = [articles[i].text[s:e] for i, s, e in spans]
    vectors = _encode(embedder, [c.text for c in chunks], sentences, progress, on_progress)
    titles = {a.id: a.title for a in articles}
    segment = Segment(
        name=segment_name(), articles=tuple(articles),
        content_hashes=tuple(article_hash(a) for a in articles),
        text_hashes=tuple(text_hash(a.text) for a in articles),
        chunk_article=np.array([number[c.article_id] for c in chunks], dtype=np.int32),
        chunk_start=np.array([c.start for c in chunks], dtype=np.int32),
        chunk_end=np.array([c.end for c in chunks], dtype=np.int32),
        chunk_ids=np.array([c.id for c in chunks], dtype=str),
        chunk_rows=np.arange(first_row, first_row + len(chunks), dtype=np.int64),
        sentence_article=np.array([i for i, _, _ in spans], dtype=np.int32),
        sentence_start=np.array([s for _, s, _ in spans], dtype=np.int32),
        sentence_end=np.array([e for _, _, e in spans], dtype=np.int32),
        sentence_vectors=vectors[len(chunks):].astype(np.float16),
        # BM25 sees the title with every chunk of its article: a passage deep in an
        # article often never names its subject, and questions do (PIAF BM25 recall@1
        # 0.682 → 0.704). The dense side does better without it (0.651 → 0.647 with it).
        chunk_terms=Postings.build(frtext.bm25_tokenize(
            f"{titles[c.article_id]} {c.text}" for c in chunks)),
        sentence_terms=Postings.build(frtext.bm25_tokenize(sentences)),
    )
    return Fresh(segment, vectors[:len(chunks)])


def _encode(embedder: Embedder, chunks: list[str], sentences: list[str], progress: bool,
            on_progress: Progress | None) -> np.ndarray:
    """Passage vectors of the chunks then the sentences, in batches that report progress."""
    texts = chunks + sentences
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(texts), desc="Encodage des passages", unit="texte")
    parts = []
    for start in range(0, len(texts), _ENCODE_BATCH):
        batch = texts[start:start + _ENCODE_BATCH]
        parts.append(embedder.encode(batch, "passage"))
        if bar is not None:
            bar.update(len(batch))
        if on_progress is not None:
            on_progress(start + len(batch), len(texts))
    if bar is not None:
        bar.close()
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)


def segment_name() -> str:
    return f"seg-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
