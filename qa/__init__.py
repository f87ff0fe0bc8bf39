"""Offline French question answering over news articles, with sentence-level citations.

    >>> from qa import answer
    >>> result = answer("Quelle est la peine prévue ?")      # doctest: +SKIP
    >>> print(result.text)                                   # doctest: +SKIP

`Assistant` keeps the model and index loaded for repeated questions;
`Settings` holds every option (environment variables `QA_*`).
"""

from .answer import Assistant, answer, clean_question
from .config import Settings
from .errors import (
    CorpusError,
    EmptyQuestion,
    IndexLocked,
    IndexMismatch,
    IndexNotBuilt,
    ModelError,
    QAError,
)
from .schema import Answer, Article, Chunk, Citation, Hit, Passage

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "Article",
    "Assistant",
    "Chunk",
    "Citation",
    "CorpusError",
    "EmptyQuestion",
    "Hit",
    "IndexLocked",
    "IndexMismatch",
    "IndexNotBuilt",
    "ModelError",
    "Passage",
    "QAError",
    "Settings",
    "__version__",
    "answer",
    "clean_question",
]
