"""The assistant: question → retrieval → grounded answer, with timings.

`Assistant.load()` loads (or builds) the index and the model once; the web app and
the benchmark keep one and call `.answer()`. `qa.answer()` is the one-line form
over a cached default assistant. Display belongs to the CLI and the app.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from pathlib import Path

import numpy as np

from qa.answering.base import Answerer
from qa.answering.retrieval import search
from qa.answering.sentence import ExtractiveAnswerer
from qa.config import DEFAULT_MAX_QUESTION_CHARS, Settings
from qa.embeddings.embedder import Embedder, load_embedder
from qa.errors import EmptyQuestion
from qa.index import (
    AddResult,
    Index,
    UpdateReport,
    add_paths,
    load_or_build,
    remove_articles,
)
from qa.index.fresh import Progress
from qa.schema import Answer, Hit, Passage

_SPACES = re.compile(r"\s+")
_DROPPED = {"So", "Sk"}  # emoji and modifier symbols


def clean_question(question: str, max_chars: int = DEFAULT_MAX_QUESTION_CHARS) -> str:
    """Printable, single-spaced, bounded text; `EmptyQuestion` when nothing is left.

    Control and format characters (NUL, bidi overrides, zero-width joiners) and
    pictographic symbols (emoji) carry no meaning for retrieval over news text and
    only blur the question's embedding, so they become spaces; letters of any
    script, digits, punctuation and currency signs are kept.
    """
    if not isinstance(question, str):
        raise EmptyQuestion(f"La question doit être du texte, pas {type(question).__name__}.")
    kept = "".join(
        " "
        if unicodedata.category(ch)[0] == "C"
        or unicodedata.category(ch) in _DROPPED
        or "\ufe00" <= ch <= "\ufe0f"  # emoji presentation selectors
        else ch
        for ch in unicodedata.normalize("NFC", question)
    )
    cleaned = _SPACES.sub(" ", kept).strip()
    if not cleaned:
        raise EmptyQuestion(
            "La question est vide : écrivez une question, par exemple "
            "« Quelle est la peine prévue ? »"
        )
    return cleaned[:max_chars]


def default_answerer(settings: Settings) -> Answerer:
    """The answerer the settings choose (`QA_ANSWERER`)."""
    if settings.answerer == "reader":  # torch and the reader are imported for it alone
        from qa.answering.reader import Fusion, ReaderAnswerer, shared_reader

        reader = shared_reader(settings.cache_dir, settings.reader_weights or None,
                               settings.reader_precision, settings.reader_backend,
                               settings.threads)
        return ReaderAnswerer(reader, settings.reader_threshold, settings.rerank_depth,
                              settings.reader_sure, Fusion(*settings.reader_fusion))
    return ExtractiveAnswerer(settings.answer_threshold, settings.max_citations)


class Assistant:
    """Holds the model, the index and the answerer: the state every answer reads.

    `Assistant.load` is the way to make one. After an update the index is swapped in
    one assignment: a question asked meanwhile is answered from the previous index,
    and the answerer, which holds no index of its own, stays the same.
    """

    def __init__(self, settings: Settings, embedder: Embedder, index: Index,
                 answerer: Answerer, last_update: UpdateReport | None = None):
        self.settings = settings
        self.embedder = embedder
        self.answerer = answerer
        self.index = index
        self.last_update = last_update
        self._update_lock = threading.Lock()

    @classmethod
    def load(cls, settings: Settings | None = None, *, embedder: Embedder | None = None,
             answerer: Answerer | None = None, progress: bool = False,
             rebuild: bool = False) -> Assistant:
        """Load the model (or use `embedder`), then the saved index, updating it if the
        corpus changed: only new or changed articles are embedded, everything with
        `rebuild`. `answerer` replaces the one the settings choose, for good."""
        settings = settings or Settings.from_env()
        embedder = embedder or load_embedder(settings)
        index, report = load_or_build(settings, embedder, progress, rebuild=rebuild)
        return cls(settings, embedder, index, answerer or default_answerer(settings), report)

    def refresh(self, progress: bool = False) -> UpdateReport | None:
        """Catch up with the corpus folder (files added or edited by hand)."""
        with self._update_lock:
            self.index, self.last_update = load_or_build(self.settings, self.embedder, progress)
            return self.last_update

    def add(self, paths: list[Path], progress: bool = False,
            on_progress: Progress | None = None) -> AddResult:
        """Copy files or folders of articles into the corpus and index them;
        `on_progress(done, total)` follows the encoding of their texts."""
        with self._update_lock:
            self.index, result = add_paths(self.settings, self.embedder, list(paths),
                                           progress, on_progress)
            self.last_update = result.report
            return result

    def remove(self, article_ids: list[str], progress: bool = False) -> UpdateReport | None:
        """Withdraw articles: their files go to `corpus/.trash/`, the index forgets them."""
        with self._update_lock:
            self.index, self.last_update = remove_articles(self.settings, self.embedder,
                                                           list(article_ids), progress)
            return self.last_update

    def search(self, question: str, k: int | None = None, retriever: str | None = None,
               query_vector: np.ndarray | None = None) -> list[Hit]:
        """Retrieval only: the top passages with their scores (`query_vector`: as for
        `answer()`)."""
        question = clean_question(question, self.settings.max_question_chars)
        retriever = retriever or self.settings.retriever
        if query_vector is None and retriever != "bm25":
            query_vector = self.embedder.encode([question], "query")[0]
        return self._search(self.index, question, query_vector, k, retriever)

    def _search(self, index, question, vector, k, retriever) -> list[Hit]:
        return search(index, question, vector, k=k or self.settings.top_k,
                      retriever=retriever or self.settings.retriever,
                      candidates=self.settings.candidates, rrf_k=self.settings.rrf_k)

    def answer(self, question: str, k: int | None = None, retriever: str | None = None,
               query_vector: np.ndarray | None = None) -> Answer:
        """Answer `question` from the indexed articles, citing sentence by sentence.

        `query_vector`, the question's embedding, lets a batch evaluation embed its
        questions at once; it must come from `self.embedder.encode(..., "query")`
        (batched vectors differ from single ones by float rounding only).
        """
        started = time.perf_counter()
        question = clean_question(question, self.settings.max_question_chars)
        index = self.index  # one snapshot for this answer, whatever updates do meanwhile
        if query_vector is None:
            query_vector = self.embedder.encode([question], "query")[0]
        shown = k or self.settings.top_k
        wanted = max(shown, getattr(self.answerer, "depth", shown))
        hits = self._search(index, question, query_vector, wanted, retriever)
        retrieved = time.perf_counter()
        # What the answerer reads of the hits (the index itself for the local store).
        draft = self.answerer.answer(index.focus(hits), question, hits, query_vector)
        done = time.perf_counter()
        ranked = draft.hits if draft.hits is not None else hits
        return Answer(
            question=question, text=draft.text, answered=draft.answered,
            citations=draft.citations, short_answer=draft.short_answer,
            passages=tuple(Passage.from_hit(h) for h in ranked[:shown]),
            confidence=round(draft.confidence, 4),
            timings={"retrieve_ms": (retrieved - started) * 1000,
                     "answer_ms": (done - retrieved) * 1000,
                     "total_ms": (done - started) * 1000},
        )


_default: Assistant | None = None
_default_lock = threading.Lock()


def default_assistant() -> Assistant:
    """The process-wide assistant for `Settings.from_env()`, loaded on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Assistant.load()
        return _default


def answer(question: str, **options) -> Answer:
    """Answer a French question from the articles of the configured corpus.

    >>> from qa import answer
    >>> a = answer("Quelle est la peine prévue ?")
    >>> a.answered, a.citations[0].title                      # doctest: +SKIP
    (True, 'La justice enquête sur les deepfakes sexuels générés par Grok sur X')

    Options: `k` (passages to retrieve) and `retriever` ("hybrid", "dense", "bm25").
    Raises `ValueError` (`qa.EmptyQuestion`) for an empty question.
    """
    return default_assistant().answer(question, **options)
