"""The sentence answerer: the retrieved passages' best sentences, quoted verbatim.

`ExtractiveAnswerer` never writes words of its own: it picks the sentences of the
retrieved passages that best answer the question and returns them verbatim, each
followed by its `[n]`, so every claim is a quote. It refuses when the closest cosine
between the question and a retrieved sentence falls below the calibrated threshold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa import text as frtext
from qa.answering.base import NOT_FOUND, Draft, sentence_citation
from qa.index import Index
from qa.schema import Hit

# Weights of the sentence score; chosen on evals/ (see README, "Calibration").
_LEXICAL_WEIGHT = 0.10
_RANK_WEIGHT = 0.02
_ANSWER_TYPE_BONUS = 0.03
_SECOND_SENTENCE_MARGIN = 0.025
# How far below the best sentence one that holds the asked-for type (a cause, a
# number) may score and still complete the answer.
_ANSWER_TYPE_MARGIN = 0.15
_ASKS_NUMBER = re.compile(
    r"\b(combien|quand|quel(le)?s? (date|délai|année|jour|montant|âge|"
    r"somme|nombre|prix|peine|durée)|en quelle année|depuis quand)\b",
    re.I,
)
_HAS_NUMBER = re.compile(r"\d")
_ASKS_CAUSE = re.compile(r"\b(pourquoi|pour quelle raison|qu'est-ce qui explique)\b", re.I)
_STATES_CAUSE = re.compile(
    r"(fait suite|suite à|à la suite|parce qu|\bcar\b|en raison|à cause|"
    r"après que|après avoir|afin de|pour que|grâce à|en réaction)",
    re.I,
)


@dataclass(frozen=True)
class ScoredSentence:
    position: int
    score: float
    dense: float
    coverage: float


class ExtractiveAnswerer:
    """Answers with the best-matching sentences of the retrieved passages, quoted verbatim."""

    def __init__(self, threshold: float, max_citations: int = 2):
        self.threshold = threshold
        self.max_citations = max_citations

    @staticmethod
    def term_weights(index: Index, question_stems: set[str]
                     ) -> dict[str, tuple[float, np.ndarray]]:
        """IDF over the corpus's sentences, and the sentences using it, of each stem."""
        terms = index.sentence_terms
        n = max(terms.n_docs, 1)
        weights = {}
        for term in question_stems:
            # A question word the corpus never uses weighs most: it signals a topic the
            # articles do not cover, which the refusal depends on.
            weights[term] = (math.log(1 + n / max(terms.document_frequency(term), 1)),
                             terms.documents_with(term))
        return weights

    @staticmethod
    def coverage(weights: dict[str, tuple[float, np.ndarray]], positions: list[int]
                 ) -> np.ndarray:
        """Share of the question's IDF mass that each sentence contains."""
        found = np.zeros(len(positions))
        total = sum(w for w, _ in weights.values())
        if not total:
            return found
        for weight, having in weights.values():
            found += weight * np.isin(positions, having)
        return found / total

    def rank_sentences(self, index: Index, question: str, hits: Sequence[Hit],
                       query_vector: np.ndarray) -> list[ScoredSentence]:
        first_rank: dict[int, int] = {}
        for rank, hit in enumerate(hits):
            for position in index.sentences_in(hit.chunk):
                first_rank.setdefault(position, rank)
        if not first_rank:
            return []
        positions = list(first_rank)
        dense = index.sentence_vectors[positions] @ query_vector.astype(np.float32)
        coverage = self.coverage(self.term_weights(index, set(frtext.bm25_tokens(question))),
                                 positions)
        # Answer-type cues: a sentence that states a number (or a cause) is a likelier
        # answer to a question that asks for one than a sentence restating the question.
        cues = self.cues(question)
        scored = []
        for position, d, cov in zip(positions, dense.tolist(), coverage.tolist(), strict=True):
            score = d + _LEXICAL_WEIGHT * cov + _RANK_WEIGHT / (1 + first_rank[position])
            sentence = index.sentence_text(position)
            score += _ANSWER_TYPE_BONUS * sum(1 for p in cues if p.search(sentence))
            scored.append(ScoredSentence(position, score, d, cov))
        return sorted(scored, key=lambda s: -s.score)

    @staticmethod
    def cues(question: str) -> list[re.Pattern]:
        """Patterns of the answer type the question asks for (a number, a cause)."""
        asked = [
            (_HAS_NUMBER, _ASKS_NUMBER.search(question)),
            (_STATES_CAUSE, _ASKS_CAUSE.search(question)),
        ]
        return [pattern for pattern, found in asked if found]

    def choose(self, index: Index, question: str, ranked: list[ScoredSentence]
               ) -> list[ScoredSentence]:
        """The best sentence, plus a close runner-up, or the best one holding the
        answer type the best lacks (the sentence after « Pourquoi … ? »'s restatement)."""
        best = ranked[0]
        chosen = [best] + [
            s
            for s in ranked[1 : self.max_citations]
            if s.score >= best.score - _SECOND_SENTENCE_MARGIN
        ]
        for pattern in self.cues(question):
            if any(pattern.search(index.sentence_text(s.position)) for s in chosen):
                continue
            typed = [
                s
                for s in ranked[1:]
                if s.score >= best.score - _ANSWER_TYPE_MARGIN
                and pattern.search(index.sentence_text(s.position))
            ]
            if typed:
                chosen = [best, typed[0]]
        return chosen[: max(self.max_citations, 1)]

    def answer(self, index: Index, question: str, hits: Sequence[Hit],
               query_vector: np.ndarray | None) -> Draft:
        if query_vector is None:
            raise ValueError("the extractive answerer needs the question's embedding")
        ranked = self.rank_sentences(index, question, hits, query_vector)
        if not ranked:
            return Draft(NOT_FOUND, False, (), 0.0)
        # Confidence is the closest cosine between the question and a retrieved
        # sentence: lexical and answer-type bonuses rank sentences but do not tell
        # whether the articles hold an answer at all.
        confidence = max(s.dense for s in ranked)
        if confidence < self.threshold:
            return Draft(NOT_FOUND, False, (), confidence)
        chosen = self.choose(index, question, ranked)
        # Quotes read in article order, as a reader would meet them.
        chosen.sort(
            key=lambda s: (
                index.sentence_spans[s.position][0],
                index.sentence_spans[s.position][1],
            )
        )
        citations = tuple(sentence_citation(index, n, s.position)
                          for n, s in enumerate(chosen, start=1))
        text = " ".join(f"{c.quote} [{c.n}]" for c in citations)
        return Draft(text, True, citations, confidence)
