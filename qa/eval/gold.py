"""What counts as gold in `qa bench`: the gold answer spans located in the indexed text,
and the tests of a chunk or a citation against a question's gold.

SQuAD questions are judged by span (the chunk or cited sentence must be of the gold
context and hold or overlap an answer span); JSON Lines questions, which carry no
offsets, by folded text (the evidence, else the answers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache

from qa.eval.datasets import Question
from qa.schema import Article, Chunk, Citation, Passage
from qa.text import fold, nfc


def _folded_with_origins(text: str) -> tuple[str, list[int]]:
    """`fold(text)` built character by character, with each folded character's offset in `text`."""
    chars: list[str] = []
    origins: list[int] = []
    for i, ch in enumerate(text):
        piece = " " if ch.isspace() else fold(ch)
        if piece == " " and (not chars or chars[-1] == " "):
            continue
        chars.extend(piece)
        origins.extend([i] * len(piece))
    return "".join(chars), origins


def _nearest(starts: list[int], hint: int) -> int:
    return min(starts, key=lambda start: (abs(start - hint), start))


def _occurrences(haystack: str, needle: str) -> list[int]:
    starts, at = [], haystack.find(needle)
    while at >= 0:
        starts.append(at)
        at = haystack.find(needle, at + 1)
    return starts


def locate_answer(text: str, answer: str, hint: int) -> tuple[int, int] | None:
    """The span of `answer` in the indexed article `text`, nearest to offset `hint`.

    The loader stores contexts in NFC and stripped, so the file's offsets are only a
    hint: the answer is looked up verbatim (NFC) first, then fold-insensitively
    (case, accents, typographic quotes, spacing). None when it is not in the text.
    """
    needle = nfc(answer)
    starts = _occurrences(text, needle)
    if starts:
        start = _nearest(starts, hint)
        return start, start + len(needle)
    folded, origins = _folded_with_origins(text)
    wanted = fold(answer)
    starts = _occurrences(folded, wanted) if wanted else []
    if not starts:
        return None
    start = _nearest(starts, hint)  # folded offsets are close enough to rank by
    return origins[start], origins[start + len(wanted) - 1] + 1


def map_spans(questions: Sequence[Question], articles: Mapping[str, Article],
              ) -> list[Question]:
    """SQuAD questions with their gold spans located in the loaded article texts."""
    mapped = []
    for q in questions:
        article = articles.get(q.article_id) if q.article_id else None
        if article is None:
            mapped.append(q)
            continue
        spans = (locate_answer(article.text, text, hint) for text, hint in q.anchors)
        mapped.append(replace(q, spans=tuple(dict.fromkeys(s for s in spans if s))))
    return mapped


# The same chunk texts and quotes come back for question after question: fold each once.
@lru_cache(maxsize=65536)
def _folded(text: str) -> str:
    return fold(text)


def _gold_texts(q: Question) -> tuple[str, ...]:
    return (q.evidence,) if q.evidence else q.answers


def is_gold_chunk(q: Question, chunk: Chunk | Passage) -> bool:
    """SQuAD: the chunk is of the gold context and holds a whole answer span.
    JSON Lines: the chunk's text holds the evidence (folded)."""
    if q.article_id is not None:
        return chunk.article_id == q.article_id and any(
            chunk.start <= start and end <= chunk.end for start, end in q.spans)
    text = _folded(chunk.text)
    return any(_folded(gold) in text for gold in _gold_texts(q))


def citation_correct(q: Question, citation: Citation) -> bool:
    """SQuAD: the cited sentence is of the gold context and overlaps an answer span.
    JSON Lines: the quote holds the evidence or the evidence holds the quote (folded)."""
    if q.article_id is not None:
        return citation.article_id == q.article_id and any(
            citation.start < end and start < citation.end for start, end in q.spans)
    quote = _folded(citation.quote)
    return any(_folded(gold) in quote or quote in _folded(gold) for gold in _gold_texts(q))


def citation_supports(q: Question, citation: Citation) -> bool:
    """The quote holds a gold answer or the evidence (folded)."""
    quote = _folded(citation.quote)
    golds = q.answers + ((q.evidence,) if q.evidence else ())
    return any(_folded(gold) in quote for gold in golds)


def retrieval_eligible(q: Question) -> bool:
    """Retrieval metrics need an answerable question with a locatable gold."""
    if not q.answerable:
        return False
    return bool(q.spans) if q.article_id is not None else bool(_gold_texts(q))


def gold_in_index(q: Question, chunks: Sequence[Chunk]) -> bool:
    """Some chunk holds the gold: else no retriever can find it (an answer cut by a border)."""
    return any(is_gold_chunk(q, chunk) for chunk in chunks)


def dataset_counts(questions: Sequence[Question], chunks: Sequence[Chunk]) -> dict[str, int]:
    """Counts that explain the n of the figures: questions, and golds the index can rank."""
    by_article: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_article.setdefault(chunk.article_id, []).append(chunk)
    eligible = [q for q in questions if retrieval_eligible(q)]
    missing = sum(1 for q in eligible if not gold_in_index(
        q, by_article.get(q.article_id, []) if q.article_id else chunks))
    return {
        "questions": len(questions),
        "answerable": sum(q.answerable for q in questions),
        "unanswerable": sum(not q.answerable for q in questions),
        "gold_unlocated": sum(q.answerable and not retrieval_eligible(q) for q in questions),
        "gold_not_in_index": missing,
    }
