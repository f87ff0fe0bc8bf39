"""The value objects that flow through the pipeline.

Articles come out of `corpus`, chunks out of `chunking`, hits out of `retrieval`,
and `Answer`/`Citation` out of `answer`. All are frozen so that the UIs and the
tests can render, compare and serialise them without surprises.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Article:
    """One news article. `text` is the clean, unwrapped body that offsets refer to."""

    id: str
    title: str
    text: str
    source: str = ""
    date: str = ""
    tag: str = ""
    language: str = "fr"
    url: str = ""
    path: str = ""

    def meta(self) -> dict[str, str]:
        """Everything but the text: what the index stores beside each chunk."""
        data = asdict(self)
        del data["text"]
        return data


@dataclass(frozen=True)
class Chunk:
    """A span of an article: `article.text[start:end] == text` always holds."""

    id: str
    article_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the scores of each retriever.

    Ranks are 1-based; `None` means that retriever did not return the chunk.
    """

    chunk: Chunk
    article: Article
    score: float
    dense_score: float | None = None
    bm25_score: float | None = None
    dense_rank: int | None = None
    bm25_rank: int | None = None


@dataclass(frozen=True)
class Citation:
    """The sentence of an article that backs one `[n]` of an answer."""

    n: int
    article_id: str
    title: str
    source: str
    date: str
    start: int
    end: int
    quote: str


@dataclass(frozen=True)
class ShortAnswer:
    """The exact words that answer the question: `text == article.text[start:end]`,
    inside the sentence that citation `n` quotes."""

    text: str
    article_id: str
    start: int
    end: int
    n: int = 1


@dataclass(frozen=True)
class Passage:
    """A retrieved passage as shown to users, with its retrieval scores."""

    article_id: str
    title: str
    start: int
    end: int
    text: str
    score: float
    dense_score: float | None = None
    bm25_score: float | None = None

    @classmethod
    def from_hit(cls, hit: Hit) -> Passage:
        return cls(
            article_id=hit.chunk.article_id,
            title=hit.article.title,
            start=hit.chunk.start,
            end=hit.chunk.end,
            text=hit.chunk.text,
            score=hit.score,
            dense_score=hit.dense_score,
            bm25_score=hit.bm25_score,
        )


@dataclass(frozen=True)
class Answer:
    """What `qa.answer()` returns.

    `text` is French; every sentence of an answered `text` ends with `[n]` markers
    that point into `citations`. A reader that finds the exact words also sets
    `short_answer`, and `text` then starts with them. When `answered` is False, `text` says that the
    articles do not hold the answer and `passages` still lists the closest ones.
    """

    question: str
    text: str
    answered: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    confidence: float = 0.0
    short_answer: ShortAnswer | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
