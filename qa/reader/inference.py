"""The reader's public API: `Reader.load(cache_dir)` then `reader.read(question, passages)`.

One `read` call scores every passage in one batched forward pass (passages longer
than the window are read in overlapping windows and keep their best window) and
returns, per passage, a `Reading`: a relevance logit for reranking, the
probability that the passage holds no answer, and the best answer span as exact
character offsets into that passage string.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from qa.config import READER_PRECISIONS
from qa.embeddings.conversion import ensure_converted
from qa.errors import EmptyQuestion
from qa.reader.model import DEFAULT_WEIGHTS, ReaderConfig, load_model
from qa.reader.windows import (
    QUESTION_PREFIX,
    Window,
    char_span,
    collate,
    cut_question,
    encode_windows,
)

DEFAULT_MAX_ANSWER_CHARS = 200
MAX_ANSWER_TOKENS = 48
_TOP = 20  # (start, end) candidates examined per window before the length checks
# <s> question </s></s> passage </s>: the tokens a pair adds around its two texts.
_PAIR_SPECIAL_TOKENS = 4


@dataclass(frozen=True)
class Reading:
    """What the reader makes of one passage.

    relevance   logit (unbounded; higher = more relevant): compare passages with it
    no_answer   probability (0..1) that the passage does not answer the question
    start, end  the answer span: `passage[start:end]` (empty when start == end)
    span_score  start logit + end logit of that span (higher = surer)
    """

    relevance: float
    no_answer: float
    start: int
    end: int
    span_score: float


class Reader:
    """The trained cross-encoder reader, ready for inference on CPU."""

    def __init__(self, model, tokenizer, config: ReaderConfig, batch_size: int = 16,
                 bf16: bool = False):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.batch_size = batch_size
        self.bf16 = bf16  # bfloat16 autocast: faster on CPUs with AVX512-BF16 or AMX

    @classmethod
    def load(cls, cache_dir: Path, weights: Path | None = None,
             precision: str = "fp32") -> Reader:
        """The reader of `weights` (default: the committed ones) over the base model
        converted in `cache_dir`; `ModelError` when they do not match.

        `precision`: "fp32", or "bf16" for bfloat16 autocast (faster on CPUs with
        AVX512-BF16 or AMX).
        """
        if precision not in READER_PRECISIONS:
            raise ValueError(f"precision {precision!r}: one of {', '.join(READER_PRECISIONS)}")
        base = ensure_converted(Path(cache_dir))
        model, tokenizer, config = load_model(base, Path(weights or DEFAULT_WEIGHTS))
        return cls(model, tokenizer, config, bf16=precision == "bf16")

    def passage_budget(self, question: str) -> int:
        """Passage tokens that fit in one window beside `question`: a passage of at
        most that many tokens is read in one pass."""
        asked = QUESTION_PREFIX + cut_question(self.tokenizer, question)
        used = len(self.tokenizer(asked, add_special_tokens=False)["input_ids"])
        return self.config.max_length - used - _PAIR_SPECIAL_TOKENS

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text as the reader sees it inside a passage."""
        if not texts:
            return []
        return [len(ids) for ids in
                self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def read(self, question: str, passages: Sequence[str],
             max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS) -> list[Reading]:
        """One `Reading` per passage, in the order given."""
        if not question or not question.strip():
            raise EmptyQuestion("La question est vide.")
        if not passages:
            return []
        windows = encode_windows(self.tokenizer, [question] * len(passages), passages,
                                 self.config.max_length, self.config.stride)
        outputs = self._forward(windows)
        best: list[Reading | None] = [None] * len(passages)
        for window, (start, end, relevance, no_answer) in zip(windows, outputs, strict=True):
            text = passages[window.passage]
            first, last, score = best_span(window, text, start, end, max_answer_chars)
            span = char_span(window, text, first, last) if first is not None else (0, 0)
            reading = Reading(relevance, _sigmoid(no_answer), span[0], span[1], score)
            best[window.passage] = _merge(best[window.passage], reading)
        return [r for r in best if r is not None]

    @torch.inference_mode()
    def _forward(self, windows: list[Window]):
        """(start logits, end logits, relevance, no-answer) of each window, by
        batches of similar lengths."""
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        results: list = [None] * len(windows)
        pad = self.tokenizer.pad_token_id
        for at in range(0, len(order), self.batch_size):
            chunk = order[at : at + self.batch_size]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                start, end, relevance, no_answer = self.model(
                    **collate([windows[i] for i in chunk], pad))
            for row, i in enumerate(chunk):
                results[i] = (start[row], end[row], float(relevance[row]),
                              float(no_answer[row]))
        return results


def best_span(window: Window, passage: str, start: torch.Tensor, end: torch.Tensor,
              max_answer_chars: int) -> tuple[int | None, int | None, float]:
    """(first token, last token, start + end logit) of the best span of the window's
    passage tokens with first ≤ last, at most `MAX_ANSWER_TOKENS` tokens and
    `max_answer_chars` characters; (None, None, -inf) when none fits."""
    first_p, last_p = window.passage_tokens
    s = start[first_p : last_p + 1]
    e = end[first_p : last_p + 1]
    scores = s[:, None] + e[None, :]
    n = scores.shape[0]
    band = torch.ones(n, n, dtype=torch.bool).triu().tril(MAX_ANSWER_TOKENS - 1)
    scores = scores.masked_fill(~band, float("-inf"))
    top = torch.topk(scores.flatten(), min(_TOP, n * n))
    for value, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        if value == float("-inf"):
            break
        first, last = first_p + flat // n, first_p + flat % n
        a, b = char_span(window, passage, first, last)
        if 0 < b - a <= max_answer_chars:
            return first, last, value
    return None, None, float("-inf")


def _merge(old: Reading | None, new: Reading) -> Reading:
    """One passage read in several windows: its most relevant window's relevance,
    the least no-answer probability and the best span of all windows."""
    if old is None:
        return new
    span = new if new.span_score > old.span_score else old
    return Reading(max(old.relevance, new.relevance), min(old.no_answer, new.no_answer),
                   span.start, span.end, span.span_score)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))
