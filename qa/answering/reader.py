"""The reader answerer: the trained cross-encoder reranks the retrieved passages,
points at the exact words that answer, and refuses when the best passage holds none.

`ReaderAnswerer` reads the top `depth` hits with `qa.reader.Reader` in one batch,
orders them by a `Fusion` of what the reader says of each (its relevance, its span
score, its no-answer probability) and of the retrieval rank, and takes the answer span
from the first. The retrieval rank stays as a prior because the relevance head,
trained against one negative per question, is a weaker judge alone; the weights are
benchmarks/tune_rerank.py's choice on PIAF dev (config.DEFAULT_READER_FUSION).

A chunk longer than one reader window (chunks hold up to 512 tokens, the window
256) is not read whole: the reader gets the run of whole sentences around the
chunk's sentence closest to the question that fits in one window, so that a
question costs one window per candidate, not two or three.

It refuses when the first passage's no-answer probability is above the threshold
calibrated on PIAF's dev articles (see the reader's model card). The span becomes a
`ShortAnswer` with offsets in the article, and the sentence (or the few sentences)
of the index that hold it are quoted as the citation, so every word the answer
shows is the article's.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.answering.base import NOT_FOUND, Draft, sentence_citation
from qa.config import DEFAULT_READER_FUSION
from qa.index import Index
from qa.reader import Reader, Reading
from qa.schema import Hit, ShortAnswer

# Read first, before the rest of the depth; see `ReaderAnswerer.sure`.
FIRST_READ = 2


@dataclass(frozen=True)
class Candidate:
    """A passage the reader read: the hit, where the read text starts in its
    article, and the reading (offsets relative to that start)."""

    hit: Hit
    offset: int
    reading: Reading


@dataclass(frozen=True)
class Fusion:
    """How the answerer orders the passages it read: the reader's relevance logit,
    less `rank` × log(1 + retrieval rank, 0-based), plus `span` × the span score, less
    `no_answer` × the no-answer logit."""

    rank: float = DEFAULT_READER_FUSION[0]
    span: float = DEFAULT_READER_FUSION[1]
    no_answer: float = DEFAULT_READER_FUSION[2]

    def score(self, reading: Reading, rank: int) -> float:
        p = min(max(reading.no_answer, 1e-6), 1 - 1e-6)
        return (reading.relevance - self.rank * math.log1p(rank)
                + self.span * reading.span_score - self.no_answer * math.log(p / (1 - p)))

    def ranked(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """`candidates`, given in retrieval order, best first."""
        order = sorted(range(len(candidates)),
                       key=lambda i: -self.score(candidates[i].reading, i))
        return [candidates[i] for i in order]


class ReaderAnswerer:
    """Reranks with the trained reader and answers with its exact span."""

    def __init__(self, reader: Reader, threshold: float, depth: int, sure: float = 0.0,
                 fusion: Fusion = Fusion()):
        self.reader = reader
        self.threshold = threshold
        # How many hits the assistant retrieves for this answerer to rerank.
        self.depth = depth
        # No-answer probability under which the first `FIRST_READ` passages suffice.
        self.sure = sure
        self.fusion = fusion

    def answer(self, index: Index, question: str, hits: Sequence[Hit],
               query_vector: np.ndarray | None) -> Draft:
        candidates = self.read(index, question, hits, query_vector)
        if not candidates:
            return Draft(NOT_FOUND, False, (), 0.0)
        ranked = self.fusion.ranked(candidates)
        reranked = tuple(c.hit for c in ranked) + tuple(hits[len(candidates):])
        best = ranked[0]
        confidence = 1.0 - best.reading.no_answer
        if best.reading.no_answer > self.threshold or best.reading.start == best.reading.end:
            return Draft(NOT_FOUND, False, (), confidence, hits=reranked)
        return cited(index, best.hit, best.offset + best.reading.start,
                     best.offset + best.reading.end, confidence, reranked)

    def read(self, index: Index, question: str, hits: Sequence[Hit],
             query_vector: np.ndarray | None) -> list[Candidate]:
        """The reader's `Candidate` for each of the first hits, in retrieval order: the
        first `FIRST_READ`, and the rest of the depth unless one of those is sure."""
        budget = self.reader.passage_budget(question)
        candidates: list[Candidate] = []

        def read_next(hits_to_read: Sequence[Hit]) -> None:
            spans = [focus(index, h, query_vector, budget, self.reader.count_tokens)
                     for h in hits_to_read]
            readings = self.reader.read(question, [h.article.text[a:b] for h, (a, b)
                                                   in zip(hits_to_read, spans, strict=True)])
            candidates.extend(Candidate(h, a, r) for h, (a, _), r
                              in zip(hits_to_read, spans, readings, strict=True))

        read_next(hits[:min(FIRST_READ, self.depth)])
        if min((c.reading.no_answer for c in candidates), default=1.0) > self.sure:
            read_next(hits[len(candidates):self.depth])
        return candidates


def focus(index: Index, hit: Hit, query_vector: np.ndarray | None, budget: int,
          count_tokens: Callable[[Sequence[str]], list[int]]) -> tuple[int, int]:
    """Article offsets [start, end) of what the reader reads of `hit`: its whole
    chunk when it fits in `budget` tokens, else the run of whole sentences around
    the one closest to the question (cosine of the indexed sentence vectors) that
    fits, growing forward first, where the answer to a restated question tends to
    be. Without a question vector (BM25 alone) the whole chunk is read."""
    chunk, text = hit.chunk, hit.article.text
    positions = index.sentences_in(chunk)
    if query_vector is None or len(positions) < 2:
        return chunk.start, chunk.end
    spans = [index.sentence_spans[p][1:] for p in positions]
    sizes = count_tokens([text[a:b] for a, b in spans])
    if sum(sizes) <= budget:
        return chunk.start, chunk.end
    closeness = index.sentence_vectors[positions] @ query_vector.astype(np.float32)
    first = last = int(np.argmax(closeness))
    used = sizes[first]
    grown = True
    while grown:
        grown = False
        if last + 1 < len(spans) and used + sizes[last + 1] <= budget:
            last, used, grown = last + 1, used + sizes[last + 1], True
        if first > 0 and used + sizes[first - 1] <= budget:
            first, used, grown = first - 1, used + sizes[first - 1], True
    return spans[first][0], spans[last][1]


def cited(index: Index, hit: Hit, start: int, end: int, confidence: float,
          reranked: tuple[Hit, ...]) -> Draft:
    """The draft quoting the sentences of `hit` that hold article[start:end]."""
    positions = [p for p in index.sentences_in(hit.chunk)
                 if index.sentence_spans[p][1] < end and index.sentence_spans[p][2] > start]
    if not positions:  # no indexed sentence holds the span: it could not be cited
        return Draft(NOT_FOUND, False, (), confidence, hits=reranked)
    citations = tuple(sentence_citation(index, n, p) for n, p in enumerate(positions, 1))
    short = ShortAnswer(text=hit.article.text[start:end], article_id=hit.article.id,
                        start=start, end=end, n=1)
    quotes = " ".join(f"{c.quote} [{c.n}]" for c in citations)
    return Draft(f"{short.text} — {quotes}", True, citations, confidence,
                 short_answer=short, hits=reranked)


_loading = threading.Lock()


@lru_cache(maxsize=4)
def _shared_reader(cache_dir: Path, weights: Path | None, precision: str, backend: str,
                   threads: int) -> Reader:
    return Reader.load(cache_dir, weights, precision, backend, threads)


def shared_reader(cache_dir: Path, weights: Path | None = None, precision: str = "fp32",
                  backend: str = "torch", threads: int = 0) -> Reader:
    """The reader of `weights` over the base model in `cache_dir`, loaded once per
    process: assistants of the same settings (tests, the web app's reloads) share it,
    which is safe since inference only reads the network."""
    with _loading:
        return _shared_reader(Path(cache_dir), Path(weights) if weights else None, precision,
                              backend, threads)
