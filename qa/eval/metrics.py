"""The pure metric functions of `qa bench`: answer normalisation, answer scores,
ranking scores, refusal accounting and percentiles.

Nothing here knows about the index or the datasets: the benchmark decides what
is gold and hands plain values in. Every aggregate is a `Figure`, a value with
the count it was computed over, and its value is None when that count is 0 (a
rate over nothing is unknown, not zero).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from qa.text import fold

__all__ = [
    "Figure",
    "answer_support",
    "citation_precision",
    "contains_answer",
    "exact_match",
    "first_relevant_rank",
    "mean",
    "mean_reciprocal_rank",
    "normalize_answer",
    "percentile",
    "recall_at_k",
    "refusal_rates",
    "share",
    "strip_markers",
    "token_f1",
]


@dataclass(frozen=True)
class Figure:
    """An aggregate and the number of items behind it; `value` is None when `n` is 0."""

    value: float | None
    n: int


# ------------------------------------------------------------------ normalisation

# Only the articles are dropped, as SQuAD's English normaliser drops a/an/the: a
# gold « L'Ouganda » and an answer « Ouganda » name the same thing.
_ARTICLES = frozenset(["le", "la", "les", "un", "une", "des", "du", "de"])
# An elided article: "l'" or "d'" at the start of a word (not "aujourd'hui").
_ELIDED_ARTICLE = re.compile(r"\b[ld]'")
_NON_WORD = re.compile(r"[^\w\s]|_")
_MARKER = re.compile(r"\s*\[\d+\]")


def strip_markers(text: str) -> str:
    """The answer text without its `[n]` citation markers.

    "Il pleut. [1] Il vente. [2]" → "Il pleut. Il vente."
    """
    return _MARKER.sub("", text).strip()


def normalize_answer(text: str) -> str:
    """Comparison form of a French answer: folded case, accents and quotes, no
    punctuation, no articles (le, la, les, l', un, une, des, du, de, d').

    "L’Ouganda" → "ouganda"; "« 60 000 euros d'amende. »" → "60 000 euros amende"
    """
    folded = _ELIDED_ARTICLE.sub(" ", fold(text))
    words = _NON_WORD.sub(" ", folded).split()
    return " ".join(word for word in words if word not in _ARTICLES)


# ------------------------------------------------------------------ answer scores


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals one normalised gold answer."""
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(gold) for gold in golds))


def _f1(predicted: list[str], gold: list[str]) -> float:
    if not predicted or not gold:
        return float(predicted == gold)
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """Best token-overlap F1 between the normalised prediction and a gold answer (SQuAD)."""
    predicted = normalize_answer(prediction).split()
    return max((_f1(predicted, normalize_answer(gold).split()) for gold in golds), default=0.0)


def contains_answer(prediction: str, golds: Sequence[str]) -> bool:
    """True when one normalised gold answer appears, as whole words, in the prediction.

    Whole words, so that the gold "an" is not found inside "ans".
    """
    predicted = f" {normalize_answer(prediction)} "
    for gold in golds:
        wanted = normalize_answer(gold)
        if wanted and f" {wanted} " in predicted:
            return True
    return False


# ------------------------------------------------------------------ aggregates


def mean(values: Sequence[float]) -> Figure:
    """The arithmetic mean of `values`, with their count."""
    if not values:
        return Figure(None, 0)
    return Figure(sum(values) / len(values), len(values))


def share(flags: Sequence[bool]) -> Figure:
    """The share of true flags."""
    return mean([float(flag) for flag in flags])


def first_relevant_rank(relevant: Sequence[bool]) -> int | None:
    """1-based rank of the first relevant item of a ranking, None when there is none."""
    return next((rank for rank, flag in enumerate(relevant, start=1) if flag), None)


def recall_at_k(ranks: Sequence[int | None], k: int) -> Figure:
    """Share of queries whose first relevant item is ranked `k` or better."""
    return share([rank is not None and rank <= k for rank in ranks])


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> Figure:
    """Mean of 1/rank of the first relevant item; a query with none scores 0."""
    return mean([0.0 if rank is None else 1.0 / rank for rank in ranks])


def citation_precision(correct: Sequence[Sequence[bool]]) -> Figure:
    """Share of correct citations, over all the citations of all the answers."""
    return share([flag for answer in correct for flag in answer])


def answer_support(supporting: Sequence[Sequence[bool]]) -> Figure:
    """Share of answers with at least one citation that supports the gold answer."""
    return share([any(answer) for answer in supporting])


def refusal_rates(outcomes: Sequence[tuple[bool, bool]]) -> dict[str, Figure]:
    """Refusal accounting over `(answerable, answered)` pairs.

    `refusal_correct`: share of unanswerable questions that were refused.
    `false_refusal`: share of answerable questions that were refused.
    """
    return {
        "refusal_correct": share([not answered for answerable, answered in outcomes
                                  if not answerable]),
        "false_refusal": share([not answered for answerable, answered in outcomes
                                if answerable]),
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (0..100) by linear interpolation between closest ranks,
    as numpy's default; None for no values."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
