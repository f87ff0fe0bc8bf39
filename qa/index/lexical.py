"""BM25 over segments: postings written once per segment, statistics counted live.

Each batch of indexed articles gets its own `Postings` (term → documents and term
frequencies, in arrays saved with numpy). A `LexicalIndex` searches several of them
at once, with corpus statistics (document count, average length, document
frequency) computed over the documents still alive, so adding a batch never
rewrites the postings already on disk and removing an article only hides its
documents. Scores follow Lucene's BM25, as bm25s's default did before:
idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf part = tf / (tf + k1·(1 - b + b·len/avgdl)).

The same class serves the chunks (for retrieval) and the sentences (for the
answerer's term weights).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

K1 = 1.5
B = 0.75


@dataclass(frozen=True)
class Postings:
    """Term → (documents, term frequencies) for the documents of one segment."""

    terms: np.ndarray  # sorted unique terms (numpy unicode)
    starts: np.ndarray  # int64, len(terms) + 1: term i's postings are [starts[i], starts[i+1])
    docs: np.ndarray  # int32 document numbers within the segment, by term then document
    freqs: np.ndarray  # float32 term frequency of each posting
    lengths: np.ndarray  # int32 tokens per document

    @property
    def n_docs(self) -> int:
        return len(self.lengths)

    @classmethod
    def build(cls, documents: Sequence[Sequence[str]]) -> Postings:
        """Postings of `documents`, each a list of tokens."""
        vocabulary: dict[str, int] = {}
        term_ids = np.fromiter(
            (vocabulary.setdefault(t, len(vocabulary)) for doc in documents for t in doc),
            dtype=np.int64,
        )
        lengths = np.fromiter((len(doc) for doc in documents), dtype=np.int32,
                              count=len(documents))
        doc_ids = np.repeat(np.arange(len(documents), dtype=np.int64), lengths)
        terms = np.array(list(vocabulary), dtype=str) if vocabulary else np.empty(0, "<U1")
        return cls._from_pairs(terms, term_ids, doc_ids, np.ones(len(term_ids), np.float32),
                               lengths)

    @classmethod
    def _from_pairs(cls, terms: np.ndarray, term_ids: np.ndarray, doc_ids: np.ndarray,
                    counts: np.ndarray, lengths: np.ndarray) -> Postings:
        """Postings from (term id, document, count) triples, in any order, repeats summed."""
        order = np.argsort(terms, kind="stable")
        rank = np.empty(len(terms), dtype=np.int64)
        rank[order] = np.arange(len(terms))
        stride = max(len(lengths), 1)  # one key per (term, document) pair
        unique, inverse = np.unique(rank[term_ids] * stride + doc_ids, return_inverse=True)
        freqs = np.bincount(inverse, weights=counts, minlength=len(unique)).astype(np.float32)
        starts = np.searchsorted(unique // stride, np.arange(len(terms) + 1)).astype(np.int64)
        return cls(terms[order], starts, (unique % stride).astype(np.int32), freqs,
                   lengths.astype(np.int32))

    @classmethod
    def concat(cls, parts: Sequence[tuple[Postings, np.ndarray]]) -> Postings:
        """One postings list over the kept documents of several: `(postings, kept)` pairs,
        `kept` being the document numbers to keep, renumbered in order."""
        all_terms = [p.terms for p, _ in parts]
        terms, inverse = np.unique(np.concatenate(all_terms) if all_terms else
                                   np.empty(0, "<U1"), return_inverse=True)
        term_ids, doc_ids, counts, lengths = [], [], [], []
        offset = seen = 0
        for postings, kept in parts:
            new_number = np.full(postings.n_docs, -1, dtype=np.int64)
            new_number[kept] = np.arange(len(kept)) + offset
            local_term = np.repeat(np.arange(len(postings.terms)), np.diff(postings.starts))
            docs = new_number[postings.docs]
            alive = docs >= 0
            term_ids.append(inverse[seen:seen + len(postings.terms)][local_term[alive]])
            doc_ids.append(docs[alive])
            counts.append(postings.freqs[alive])
            lengths.append(postings.lengths[kept])
            offset += len(kept)
            seen += len(postings.terms)
        return cls._from_pairs(terms, _cat(term_ids, np.int64), _cat(doc_ids, np.int64),
                               _cat(counts, np.float32), _cat(lengths, np.int32))

    def lookup(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(documents, frequencies) of `term`, empty when the segment never uses it."""
        at = int(np.searchsorted(self.terms, term))
        if at >= len(self.terms) or self.terms[at] != term:
            return self.docs[:0], self.freqs[:0]
        lo, hi = self.starts[at], self.starts[at + 1]
        return self.docs[lo:hi], self.freqs[lo:hi]

    def save(self, path: Path) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, terms=self.terms, starts=self.starts, docs=self.docs, freqs=self.freqs,
                     lengths=self.lengths)

    @classmethod
    def load(cls, path: Path) -> Postings:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["terms"], data["starts"], data["docs"], data["freqs"],
                       data["lengths"])


def _cat(arrays: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype) if arrays else np.empty(0, dtype)


class LexicalIndex:
    """BM25 search over the live documents of several segments' postings.

    Each part pairs a `Postings` with the global position of each of its documents
    (-1 for a document that was removed); results are global positions.
    """

    def __init__(self, parts: Sequence[tuple[Postings, np.ndarray]]):
        self._parts = list(parts)
        lengths = [p.lengths[where >= 0] for p, where in self._parts]
        all_lengths = np.concatenate(lengths) if lengths else np.empty(0)
        self.n_docs = len(all_lengths)
        self._avg_length = float(all_lengths.mean()) if self.n_docs else 1.0

    def _postings(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(global positions, frequencies, document lengths) of the live documents using `term`."""
        found = []
        for postings, where in self._parts:
            docs, freqs = postings.lookup(term)
            positions = where[docs]
            alive = positions >= 0
            found.append((positions[alive], freqs[alive], postings.lengths[docs[alive]]))
        if not found:
            return np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int32)
        return tuple(np.concatenate(column) for column in zip(*found, strict=True))

    def documents_with(self, term: str) -> np.ndarray:
        """Global positions of the live documents that contain `term`."""
        return self._postings(term)[0]

    def document_frequency(self, term: str) -> int:
        """Live documents that contain `term` (counted, without gathering the postings:
        the sentence answerer asks it beside `documents_with` for every question word)."""
        return sum(int((where[postings.lookup(term)[0]] >= 0).sum())
                   for postings, where in self._parts)

    def idf(self, document_frequency: int) -> float:
        n, df = self.n_docs, document_frequency
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def search(self, tokens: Iterable[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` (global positions, scores) for a query's tokens, best first; only
        documents sharing a term with the query are returned."""
        positions, scores = [], []
        weight: dict[str, int] = {}
        for token in tokens:  # a repeated query term counts once per repetition
            weight[token] = weight.get(token, 0) + 1
        for term, times in weight.items():
            where, freqs, lengths = self._postings(term)
            if not len(where):
                continue
            norm = K1 * (1 - B + B * lengths / self._avg_length)
            positions.append(where)
            scores.append(times * self.idf(len(where)) * freqs / (freqs + norm))
        if not positions:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        unique, inverse = np.unique(np.concatenate(positions), return_inverse=True)
        totals = np.bincount(inverse, weights=np.concatenate(scores))
        k = min(k, len(unique))
        top = np.argpartition(-totals, k - 1)[:k] if k < len(unique) else np.arange(len(unique))
        top = top[np.lexsort((unique[top], -totals[top]))]
        return unique[top], totals[top].astype(np.float32)
