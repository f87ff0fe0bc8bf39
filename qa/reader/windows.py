"""Question + passage windows for the reader, and the token ↔ character mapping.

Owns how a (question, passage) pair becomes model input: the question (prefixed
with e5's "query: " and cut to `MAX_QUESTION_TOKENS`) and a window of the passage,
sliding with an overlap of `stride` tokens when the passage does not fit in
`max_length`. Every window keeps, for each token, its character offsets in the
passage string (None for question and special tokens), so that a span of tokens
maps back to exact characters of the passage (`char_span`) and an answer's
characters map to tokens for training (`token_span`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

QUESTION_PREFIX = "query: "
MAX_QUESTION_TOKENS = 64
# Characters never worth keeping at the edges of an answer span.
_EDGE_PUNCTUATION = " \t\r\n\u00a0\u202f,;:!?…"
_PAIRS = {"«": "»", "(": ")", "[": "]", "“": "”", '"': '"', "‘": "’"}
_CLOSERS = {v: k for k, v in _PAIRS.items()}


@dataclass(frozen=True)
class Window:
    """One model input: token ids, and the passage offsets of each token (None
    outside the passage), for passage number `passage` of the batch."""

    passage: int
    input_ids: list[int]
    offsets: list[tuple[int, int] | None]

    @property
    def passage_tokens(self) -> tuple[int, int]:
        """(first, last) token positions of the passage inside the window."""
        inside = [i for i, off in enumerate(self.offsets) if off is not None]
        return inside[0], inside[-1]

    def covers(self, start: int, end: int) -> bool:
        """True when characters [start, end) of the passage all lie in this window."""
        first, last = self.passage_tokens
        return self.offsets[first][0] <= start and end <= self.offsets[last][1]


def cut_question(tokenizer, question: str) -> str:
    """The question, cut after `MAX_QUESTION_TOKENS` tokens (a 2,000-character
    question must leave room for the passage)."""
    encoded = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    if len(offsets) <= MAX_QUESTION_TOKENS:
        return question
    return question[: offsets[MAX_QUESTION_TOKENS - 1][1]]


def encode_windows(tokenizer, questions: Sequence[str], passages: Sequence[str],
                   max_length: int, stride: int) -> list[Window]:
    """The windows of each (questions[i], passages[i]) pair, in order; a passage
    longer than the window gets several, overlapping by `stride` tokens."""
    if not passages:
        return []
    firsts = [QUESTION_PREFIX + cut_question(tokenizer, q) for q in questions]
    encoded = tokenizer(firsts, list(passages), truncation="only_second",
                        max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
    windows = []
    for i, ids in enumerate(encoded["input_ids"]):
        sequence = encoded.sequence_ids(i)
        offsets = [tuple(off) if seq == 1 else None
                   for off, seq in zip(encoded["offset_mapping"][i], sequence, strict=True)]
        windows.append(Window(encoded["overflow_to_sample_mapping"][i], list(ids), offsets))
    return windows


def collate(windows: Sequence[Window], pad_id: int) -> dict[str, torch.Tensor]:
    """input_ids and attention_mask, padded to the longest window of the batch."""
    width = max(len(w.input_ids) for w in windows)
    ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows), width), dtype=torch.long)
    for row, window in enumerate(windows):
        ids[row, : len(window.input_ids)] = torch.tensor(window.input_ids)
        mask[row, : len(window.input_ids)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def token_span(window: Window, start: int, end: int) -> tuple[int, int] | None:
    """(first, last) token positions covering characters [start, end) of the
    passage, or None when the window does not hold all of them."""
    if not window.covers(start, end):
        return None
    first = last = None
    for i, off in enumerate(window.offsets):
        if off is None or off[1] <= start or off[0] >= end:
            continue
        first = i if first is None else first
        last = i
    return None if first is None else (first, last)


def char_span(window: Window, passage: str, first: int, last: int) -> tuple[int, int]:
    """Characters of the passage that tokens first..last (inclusive) point at,
    trimmed of blanks, edge punctuation and unbalanced quotes or brackets.

    Tokens carry their leading space (" a" is (13, 15)): the trim removes it.
    """
    start, end = window.offsets[first][0], window.offsets[last][1]
    return trim_span(passage, start, end)


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) narrowed until it neither begins nor ends with blanks,
    `,;:!?…`, a final period after a word (not an abbreviation), or an
    unmatched quote or bracket. Keeps « M. », « J.-C. » and « (UE) » whole."""
    changed = True
    while changed and start < end:
        changed = False
        while start < end and text[start] in _EDGE_PUNCTUATION + ".":
            start, changed = start + 1, True
        while start < end and text[end - 1] in _EDGE_PUNCTUATION:
            end, changed = end - 1, True
        span = text[start:end]
        if span and span[0] in _PAIRS and _PAIRS[span[0]] not in span[1:]:
            start, changed = start + 1, True
        elif _loose_end(span):
            end, changed = end - 1, True
    return start, max(start, end)


def _loose_end(span: str) -> bool:
    """True when the last character of `span` should go: an unmatched closing quote or
    bracket, or a sentence's final period."""
    if span and span[-1] in _CLOSERS and _CLOSERS[span[-1]] not in span[:-1]:
        return True
    return span.endswith(".") and _ends_with_word(span[:-1])


def _ends_with_word(text: str) -> bool:
    """True when `text` ends with a word a period would end a sentence after: 3+
    characters without a period of its own (« fin. », « 1998. »), not an
    abbreviation (« M. », « av. », « J.-C. »)."""
    word = text.rsplit(None, 1)[-1] if text.strip() else ""
    return len(word) >= 3 and "." not in word
