"""The index as searches read it: segments, a vector store, and one numbering.

Layout of `index/` (plain files, no pickle; written by `writer`):

    index/current -> gen-<time>-<id>/   symlink, swapped atomically after each update
    index/gen-…/manifest.json           `manifest.Manifest`: format, model + weights
                                        fingerprint, chunker settings, sha256 of every
                                        corpus file, counts, the segments in use and
                                        the articles each one no longer serves
    index/gen-…/dense.faiss             vectors of every live chunk (`vector_store`)
    index/segments/seg-…/               articles, chunks, sentences, BM25 postings
                                        (`segments`), shared by generations

`load` reads the generation `current` points to. The `Index` it returns numbers the
live chunks and sentences of all segments in one sequence without copying the
segments, so loading costs little more than reading the files. Searching lives in
`qa.answering.retrieval`.
"""

from __future__ import annotations

import bisect
import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from qa.errors import IndexMismatch, IndexNotBuilt
from qa.index import manifest as manifests
from qa.index.lexical import LexicalIndex
from qa.index.manifest import Manifest
from qa.index.segments import Segment
from qa.index.vector_store import VectorStore
from qa.schema import Article, Chunk

log = logging.getLogger(__name__)

CURRENT = "current"
SEGMENTS = "segments"

# ---------------------------------------------------------------- the loaded index


class _Layout:
    """One global numbering of the live items (chunks or sentences) of the segments."""

    def __init__(self, live: list[np.ndarray], sizes: list[int]):
        self.live = live  # per segment, the local numbers of its live items, ascending
        self.offsets = np.cumsum([0] + [len(x) for x in live])
        self.where = []  # per segment, the global position of each local item, -1 if dead
        for offset, local, size in zip(self.offsets[:-1], live, sizes, strict=True):
            where = np.full(size, -1, dtype=np.int64)
            where[local] = np.arange(len(local)) + offset
            self.where.append(where)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, position: int) -> tuple[int, int]:
        """(segment, local number) of a global position."""
        if not 0 <= position < len(self):
            raise IndexError(position)
        part = bisect.bisect_right(self.offsets, position) - 1
        return part, int(self.live[part][position - self.offsets[part]])


class _Table(Sequence):
    """A read-only sequence that builds each item from its segment on access."""

    def __init__(self, layout: _Layout, item: Callable[[int, int], object]):
        self._layout, self._item = layout, item

    def __len__(self) -> int:
        return len(self._layout)

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        if position < 0:
            position += len(self)
        return self._item(*self._layout.locate(position))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # mutable-like: equal by content


class _Rows:
    """Sentence vectors of all segments, read by global sentence positions."""

    def __init__(self, layout: _Layout, arrays: list[np.ndarray], dim: int):
        self._layout, self._arrays, self.dim = layout, arrays, dim

    def __len__(self) -> int:
        return len(self._layout)

    def __getitem__(self, positions) -> np.ndarray:
        positions = np.atleast_1d(np.asarray(positions, dtype=np.int64))
        out = np.empty((len(positions), self.dim), dtype=np.float32)
        parts = np.searchsorted(self._layout.offsets, positions, side="right") - 1
        for part in np.unique(parts):
            mask = parts == part
            local = self._layout.live[part][positions[mask] - self._layout.offsets[part]]
            out[mask] = self._arrays[part][local]
        return out


@dataclass
class Index:
    """A loaded index: the state every search reads. Built from segments without
    copying them; chunks and sentences are numbered globally over live items only."""

    path: Path
    manifest: Manifest
    segments: list[Segment]
    dead: dict[str, frozenset[str]]
    store: VectorStore
    articles: dict[str, Article] = field(init=False)
    chunks: Sequence[Chunk] = field(init=False)
    sentence_spans: Sequence[tuple[str, int, int]] = field(init=False)
    sentence_vectors: _Rows = field(init=False)
    bm25: LexicalIndex = field(init=False)
    sentence_terms: LexicalIndex = field(init=False)

    def __post_init__(self) -> None:
        self.articles, self._home = {}, {}
        moved = self.manifest.moved_paths
        chunk_live, sentence_live = [], []
        for part, segment in enumerate(self.segments):
            alive = segment.alive(self.dead.get(segment.name, frozenset()))
            for local in np.flatnonzero(alive):
                article = segment.articles[local]
                if article.id in moved:  # renamed file, same content: not re-embedded
                    article = replace(article, path=moved[article.id])
                self.articles[article.id] = article
                self._home[article.id] = (part, int(local))
            chunk_live.append(np.flatnonzero(alive[segment.chunk_article]))
            sentence_live.append(np.flatnonzero(alive[segment.sentence_article]))
        self._chunks = _Layout(chunk_live, [s.n_chunks for s in self.segments])
        self._sentences = _Layout(sentence_live, [len(s.sentence_article) for s in self.segments])
        self.chunks = _Table(self._chunks, lambda part, local: self.segments[part].chunk(local))
        self.sentence_spans = _Table(self._sentences, self._span)
        self.sentence_vectors = _Rows(self._sentences, [s.sentence_vectors for s in self.segments],
                                      self.store.dim)
        self.bm25 = LexicalIndex([(s.chunk_terms, w)
                                  for s, w in zip(self.segments, self._chunks.where, strict=True)])
        self.sentence_terms = LexicalIndex(
            [(s.sentence_terms, w) for s, w in zip(self.segments, self._sentences.where,
                                                   strict=True)])

    def _span(self, part: int, local: int) -> tuple[str, int, int]:
        segment = self.segments[part]
        article = segment.articles[segment.sentence_article[local]]
        return article.id, int(segment.sentence_start[local]), int(segment.sentence_end[local])

    @property
    def n_chunks(self) -> int:
        return len(self.chunks)

    @property
    def article_hashes(self) -> dict[str, str]:
        """Content hash of every live article (what updates compare)."""
        return {aid: self.segments[p].content_hashes[i] for aid, (p, i) in self._home.items()}

    @property
    def text_hashes(self) -> dict[str, str]:
        """Article id of every live text hash (what deduplication compares)."""
        return {self.segments[p].text_hashes[i]: aid for aid, (p, i) in self._home.items()}

    @cached_property
    def _row_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        rows = np.concatenate([s.chunk_rows[live] for s, live in
                               zip(self.segments, self._chunks.live, strict=True)] or [[]])
        order = np.argsort(rows, kind="stable")
        return rows[order].astype(np.int64), order

    def chunk_position(self, row: int) -> int | None:
        """Position in `chunks` of the chunk stored under vector id `row`."""
        rows, order = self._row_lookup
        at = int(np.searchsorted(rows, row))
        return int(order[at]) if at < len(rows) and rows[at] == row else None

    def segment_of(self, article_id: str) -> str:
        """Name of the segment that serves the article."""
        return self.segments[self._home[article_id][0]].name

    @cached_property
    def passage_counts(self) -> dict[str, int]:
        """Number of passages (chunks) of every live article, counted from the segments'
        columns rather than by building every chunk."""
        per_segment = [np.bincount(s.chunk_article, minlength=len(s.articles))
                       for s in self.segments]
        return {aid: int(per_segment[part][local]) for aid, (part, local) in self._home.items()}

    def chunk_rows_of(self, article_id: str) -> np.ndarray:
        """Vector ids of an article's chunks."""
        part, local = self._home[article_id]
        segment = self.segments[part]
        return segment.chunk_rows[segment.chunk_article == local]

    def sentences_in(self, chunk: Chunk) -> list[int]:
        """Positions of the sentences that lie in `chunk` or overlap its edges."""
        part, local = self._home[chunk.article_id]
        segment = self.segments[part]
        lo, hi = np.searchsorted(segment.sentence_article, [local, local + 1])
        overlap = ((segment.sentence_start[lo:hi] < chunk.end)
                   & (segment.sentence_end[lo:hi] > chunk.start))
        return self._sentences.where[part][lo:hi][overlap].tolist()

    def sentence_text(self, position: int) -> str:
        article_id, start, end = self.sentence_spans[position]
        return self.articles[article_id].text[start:end]

    def focus(self, hits: Sequence[object]) -> Index:
        """What the answerers read about `hits`: this whole snapshot, already in memory
        (an index in Qdrant gives a small one, `qa.index.qdrant.view.Focus`)."""
        return self


# ---------------------------------------------------------------- loading


def read_manifest(index_dir: Path) -> Manifest | None:
    """The published generation's manifest, or None when there is none, it cannot be
    read or it has another format (the writer then rebuilds)."""
    try:
        return manifests.read(Path(index_dir) / CURRENT)
    except IndexMismatch as exc:
        log.info("Reconstruction complète de l'index : %s", exc)
        return None


# Segments never change once written, so loads in one process share them.
_segment_cache: weakref.WeakValueDictionary[str, Segment] = weakref.WeakValueDictionary()


def _segment(folder: Path) -> Segment:
    key = str(folder.resolve())
    segment = _segment_cache.get(key)
    if segment is None:
        segment = _segment_cache[key] = Segment.read(folder)
    return segment


def load(index_dir: Path) -> Index:
    """Load the published index; `IndexNotBuilt` when there is none."""
    index_dir = Path(index_dir)
    for attempt in range(3):
        generation = (index_dir / CURRENT).resolve()
        try:
            manifest = manifests.read(generation)
        except IndexMismatch as exc:
            raise IndexMismatch(f"L'index {index_dir} est illisible ou d'un autre format ({exc}) :"
                                " relancez `qa index`.") from exc
        if manifest is None:
            if attempt < 2 and (index_dir / CURRENT).resolve() != generation:
                continue  # swapped and removed while we read it
            raise IndexNotBuilt(f"Aucun index dans {index_dir} : lancez `qa index`.")
        try:
            segments = [_segment(index_dir / SEGMENTS / s.name) for s in manifest.segments]
            store = VectorStore.load(generation / "dense.faiss")
        except FileNotFoundError:
            # A writer swapped generations and removed this one's files meanwhile.
            if attempt == 2:
                raise
            continue
        return Index(generation, manifest, segments, manifest.dead, store)
    raise AssertionError("unreachable")
