"""The answerer seam: what turns retrieved passages into a cited answer.

An `Answerer` maps (index, question, hits) to a `Draft` whose text carries `[n]`
markers pointing into its citations. It holds no index of its own: the assistant
hands it the index snapshot that the hits came from, so one answerer serves every
generation of the index, across updates. Anything with that method can replace the
default (a trained reader, a generative back-end) without touching retrieval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qa.index import Index
from qa.schema import Citation, Hit, ShortAnswer

NOT_FOUND = "Je ne trouve pas la réponse dans les articles indexés."


@dataclass(frozen=True)
class Draft:
    """An answerer's output: French text with `[n]` markers, and what backs them.

    `short_answer` is set by answerers that find the exact words; `hits` by those that
    reorder the passages (a reranker), else the retrieval order stands."""

    text: str
    answered: bool
    citations: tuple[Citation, ...]
    confidence: float
    short_answer: ShortAnswer | None = None
    hits: tuple[Hit, ...] | None = None


class Answerer(Protocol):
    """Turns the hits of a question into a `Draft`; holds no index of its own.

    An answerer may have a `depth` attribute: how many hits it wants (a reranker
    wants more than the `top_k` shown); without one it gets `top_k`."""

    def answer(self, index: Index, question: str, hits: Sequence[Hit],
               query_vector: np.ndarray | None) -> Draft:
        """Answer `question` from `hits`, retrieved from `index`; `query_vector` is the
        question's embedding (None for BM25-only retrieval)."""
        ...


def sentence_citation(index: Index, n: int, position: int) -> Citation:
    """Citation `[n]` quoting the indexed sentence at `position` exactly."""
    article_id, start, end = index.sentence_spans[position]
    article = index.articles[article_id]
    return Citation(n=n, article_id=article_id, title=article.title, source=article.source,
                    date=article.date, start=start, end=end, quote=article.text[start:end])
