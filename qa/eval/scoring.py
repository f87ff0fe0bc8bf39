"""Scoring one answer of `qa bench`: its answer, citation, refusal and ranking scores
against the question's gold, and whether it belongs in the failures file.

The formulas live in `qa.eval.metrics`, what counts as gold in `qa.eval.gold`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qa.eval import metrics as m
from qa.eval.datasets import Question
from qa.eval.gold import citation_correct, citation_supports, is_gold_chunk, retrieval_eligible
from qa.schema import Answer, Hit

# Recall@10 needs ten passages whatever `k` the answers use.
RECALL_DEPTH = 10


@dataclass(frozen=True)
class Outcome:
    """The scores of one question asked with one retriever."""

    answerable: bool
    answered: bool
    eligible: bool
    gold_rank: int | None
    answer_rank: int | None
    exact: float
    f1: float
    contains: bool
    citations: tuple[bool, ...]
    supports: tuple[bool, ...]
    prefix_agrees: bool


def score(q: Question, answer: Answer, ranked: Sequence[Hit]) -> Outcome:
    """Score one answer and its top-10 ranking against the question's gold.

    Exact match and F1 score the short answer when the answerer gives one (the
    reader), else the answer's text; `contains` asks whether the gold answer is in
    what the user reads (the whole answer text: short answer and quotes);
    `answer_rank` is the gold passage's rank among the passages the answer shows,
    after the answerer's reranking if any.
    """
    short = answer.short_answer.text if answer.short_answer else None
    prediction = (short or m.strip_markers(answer.text)) if answer.answered else ""
    shown = [(p.article_id, p.start, p.end) for p in answer.passages]
    ranked_keys = [(h.chunk.article_id, h.chunk.start, h.chunk.end) for h in ranked]
    answerable = q.answerable
    return Outcome(
        answerable=answerable,
        answered=answer.answered,
        eligible=retrieval_eligible(q),
        gold_rank=m.first_relevant_rank([is_gold_chunk(q, h.chunk) for h in ranked]),
        answer_rank=m.first_relevant_rank([is_gold_chunk(q, p) for p in answer.passages]),
        exact=m.exact_match(prediction, q.answers) if answerable else 0.0,
        f1=m.token_f1(prediction, q.answers) if answerable else 0.0,
        contains=answerable and answer.answered
        and m.contains_answer(m.strip_markers(answer.text), q.answers),
        citations=tuple(citation_correct(q, c) for c in answer.citations),
        supports=tuple(citation_supports(q, c) for c in answer.citations),
        # Only meaningful when k <= RECALL_DEPTH: then the answer's passages must come
        # from the recall ranking (its head, in the order a reranking answerer chose).
        prefix_agrees=len(shown) > RECALL_DEPTH or set(shown) <= set(ranked_keys),
    )


def failure_kind(q: Question, outcome: Outcome) -> str | None:
    """Why an answer is worth reading in the failures file, or None when it is fine."""
    if not q.answerable:
        return "false_answer" if outcome.answered else None
    if not outcome.answered:
        return "false_refusal"
    return None if outcome.contains else "answer_without_gold"


def failure_row(q: Question, retriever: str, answerer: str, answer: Answer,
                outcome: Outcome, kind: str) -> dict:
    """One line of the failures file: the question, its gold, the answer and its sources."""
    return {
        "id": q.id, "retriever": retriever, "answerer": answerer, "kind": kind,
        "question": q.question,
        "gold": list(q.answers), "evidence": q.evidence, "answerable": q.answerable,
        "answer": answer.text,
        "short_answer": answer.short_answer.text if answer.short_answer else None,
        "answered": answer.answered, "confidence": answer.confidence,
        "cited_quotes": [c.quote for c in answer.citations], "gold_rank": outcome.gold_rank,
        "passages": [p.title for p in answer.passages],
    }

