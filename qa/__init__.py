"""Offline French question answering over news articles, with sentence-level citations.

    >>> from qa import answer
    >>> result = answer("Quelle est la peine prévue ?")      # doctest: +SKIP
    >>> print(result.text)                                   # doctest: +SKIP

`Assistant.load()` keeps the model and index loaded for repeated questions and keeps
the corpus and its index in step (`add`, `remove`, `refresh`); `Settings` holds every
option (environment variables `QA_*`). Two seams take your own parts:
`Assistant.load(embedder=...)` any `Embedder`, `Assistant.load(answerer=...)` any
`Answerer` (it gets the index with each question, so it survives every update).

The stages, each a package that imports only from the ones before it:
`qa.corpus` (files → articles), `qa.embeddings` (texts → vectors), `qa.index`
(articles → segments, BM25, vector store, updates), `qa.answering` (retrieval,
answerers, the assistant); then the front ends `qa.cli`, `qa.web` and `qa.eval`
(`qa bench`). See docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# The names below are loaded on first use (PEP 562), so that importing a stage does
# not load every other: `python -m qa.embeddings` prepares the models while pip is
# still installing the web stack (Makefile), and `import qa.config` stays cheap.
_HOMES = {
    "Answer": "qa.schema", "Article": "qa.schema", "Chunk": "qa.schema",
    "Citation": "qa.schema", "Hit": "qa.schema", "Passage": "qa.schema",
    "Answerer": "qa.answering", "Assistant": "qa.answering", "Draft": "qa.answering",
    "answer": "qa.answering", "clean_question": "qa.answering",
    "Settings": "qa.config", "Embedder": "qa.embeddings",
    **{name: "qa.errors" for name in ("CorpusError", "EmptyQuestion", "IndexLocked",
                                      "IndexMismatch", "IndexNotBuilt", "ModelError",
                                      "QAError", "SettingsError")},
}

if TYPE_CHECKING:
    from qa.answering import Answerer, Assistant, Draft, answer, clean_question
    from qa.config import Settings
    from qa.embeddings import Embedder
    from qa.errors import (
        CorpusError,
        EmptyQuestion,
        IndexLocked,
        IndexMismatch,
        IndexNotBuilt,
        ModelError,
        QAError,
        SettingsError,
    )
    from qa.schema import Answer, Article, Chunk, Citation, Hit, Passage


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'qa' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


__version__ = "0.1.0"

__all__ = [
    "Answer",
    "Answerer",
    "Article",
    "Assistant",
    "Chunk",
    "Citation",
    "CorpusError",
    "Draft",
    "Embedder",
    "EmptyQuestion",
    "Hit",
    "IndexLocked",
    "IndexMismatch",
    "IndexNotBuilt",
    "ModelError",
    "Passage",
    "QAError",
    "Settings",
    "SettingsError",
    "__version__",
    "answer",
    "clean_question",
]
