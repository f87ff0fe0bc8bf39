"""The reader's public API: `Reader.load(cache_dir)` then `reader.read(question, passages)`.

One `read` call scores every passage in one batched forward pass (passages longer
than the window are read in overlapping windows and keep their best window) and
returns, per passage, a `Reading`: a relevance logit for reranking, the
probability that the passage holds no answer, and the best answer span as exact
character offsets into that passage string.

The network runs in torch (fp32 or bf16 autocast) or, exported to ONNX once into the
cache folder, in ONNX Runtime or OpenVINO, fp32 or int8 (`QA_BACKEND`, see
`qa.embeddings.runtime`); only the forward pass differs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from qa.config import READER_PRECISIONS
from qa.embeddings import runtime
from qa.embeddings.conversion import ensure_converted, file_sha256
from qa.embeddings.runtime import Backend
from qa.errors import EmptyQuestion
from qa.reader.model import (
    DEFAULT_WEIGHTS,
    ReaderConfig,
    checked_config,
    load_base,
    load_model,
)
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
_REMEMBERED_COUNTS = 200_000  # texts whose token count is kept (sentences, mostly)
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

    def __init__(self, network, tokenizer, config: ReaderConfig, batch_size: int = 16):
        # network(input_ids, attention_mask) -> (start, end, relevance, no-answer) tensors
        self.network = network
        self.tokenizer = tokenizer
        self.config = config
        self.batch_size = batch_size
        self._token_counts: dict[str, int] = {}

    @classmethod
    def load(cls, cache_dir: Path, weights: Path | None = None, precision: str = "fp32",
             backend: str = "torch", n_threads: int = 0) -> Reader:
        """The reader of `weights` (default: the committed ones) over the base model
        converted in `cache_dir`; `ModelError` when they do not match.

        `backend`: one of `runtime.BACKENDS`. `precision` (torch only): "fp32", or
        "bf16" for bfloat16 autocast (faster on CPUs with AVX512-BF16 or AMX).
        """
        if precision not in READER_PRECISIONS:
            raise ValueError(f"precision {precision!r}: one of {', '.join(READER_PRECISIONS)}")
        chosen = Backend.parse(backend)
        base = ensure_converted(Path(cache_dir))
        weights = Path(weights or DEFAULT_WEIGHTS)
        n_threads = runtime.threads(n_threads)
        if chosen.runtime == "torch":
            torch.set_num_threads(n_threads)
            model, tokenizer, config = load_model(base, weights)
            return cls(_TorchNetwork(model, precision == "bf16"), tokenizer, config)
        runtime.require(chosen)
        config = checked_config(base, weights)
        tokenizer = load_base(base, encoder=False)[1]
        digest = file_sha256(weights)
        path = runtime.exported(Path(cache_dir) / "exports" / f"reader-{digest[:16]}", "reader",
                                runtime.stamp_of(config.base_fingerprint, digest),
                                lambda target: _export(base, weights, target), chosen,
                                lambda: _calibration(tokenizer, config))
        network = _GraphNetwork(runtime.Graph(path, chosen.runtime, n_threads,
                                               chosen.precision == "bf16",
                                               tokenizer.pad_token_id))
        return cls(network, tokenizer, config)

    def passage_budget(self, question: str) -> int:
        """Passage tokens that fit in one window beside `question`: a passage of at
        most that many tokens is read in one pass."""
        asked = QUESTION_PREFIX + cut_question(self.tokenizer, question)
        used = len(self.tokenizer(asked, add_special_tokens=False)["input_ids"])
        return self.config.max_length - used - _PAIR_SPECIAL_TOKENS

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text as the reader sees it inside a passage. Remembered:
        the answerer counts the sentences of every candidate chunk for each question,
        and the same chunks come back (4 ms of a question's 150 on PIAF)."""
        counts = self._token_counts
        missing = [t for t in dict.fromkeys(texts) if t not in counts]
        if missing:
            if len(counts) + len(missing) > _REMEMBERED_COUNTS:
                counts.clear()
            ids = self.tokenizer(missing, add_special_tokens=False)["input_ids"]
            counts.update((t, len(i)) for t, i in zip(missing, ids, strict=True))
        return [counts[t] for t in texts]

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

    def _forward(self, windows: list[Window]):
        """(start logits, end logits, relevance, no-answer) of each window, by
        batches of similar lengths."""
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        results: list = [None] * len(windows)
        pad = self.tokenizer.pad_token_id
        for at in range(0, len(order), self.batch_size):
            chunk = order[at : at + self.batch_size]
            start, end, relevance, no_answer = self.network(
                **collate([windows[i] for i in chunk], pad))
            for row, i in enumerate(chunk):
                results[i] = (start[row], end[row], float(relevance[row]),
                              float(no_answer[row]))
        return results


class _TorchNetwork:
    def __init__(self, model, bf16: bool):
        self.model = model
        self.bf16 = bf16  # bfloat16 autocast: faster on CPUs with AVX512-BF16 or AMX

    @torch.inference_mode()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return self.model(input_ids=input_ids, attention_mask=attention_mask)


class _GraphNetwork:
    def __init__(self, graph: runtime.Graph):
        self.graph = graph

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        out = self.graph.run({"input_ids": input_ids.numpy(),
                              "attention_mask": attention_mask.numpy()})
        return tuple(torch.from_numpy(out[name]) for name in _OUTPUTS)


_OUTPUTS = ("start", "end", "relevance", "no_answer")


def _calibration(tokenizer, config: ReaderConfig) -> list[dict]:
    """Input feeds for static int8: each calibration question beside four passages."""
    passages, questions = runtime.calibration_texts()
    pairs = [(q, passages[(i * 4 + k) % len(passages)])
             for i, q in enumerate(questions) for k in range(4)]
    windows = encode_windows(tokenizer, [q for q, _ in pairs], [p for _, p in pairs],
                             config.max_length, config.stride)
    return [{k: v.numpy() for k, v in collate([w], tokenizer.pad_token_id).items()}
            for w in windows]


def _export(base: Path, weights: Path, target: Path) -> None:
    """Trace the reader (adapters merged) into an ONNX graph."""
    model, tokenizer, config = load_model(base, weights)
    model.encoder.set_attn_implementation("eager")  # see `runtime`: traced masks
    # Two windows of different lengths: the trace must see padding.
    windows = encode_windows(tokenizer, ["Qui ?", "Quelle est la peine prévue ?"],
                             ["Lui.", "Le tribunal a prononcé deux ans de prison avec sursis."],
                             config.max_length, config.stride)
    runtime.export_onnx(model, collate(windows, tokenizer.pad_token_id), _OUTPUTS, target,
                        sequence_outputs=("start", "end"))


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
