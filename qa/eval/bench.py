"""`qa bench`: retrieval, answer, citation, refusal and speed figures on a question set.

    qa bench evals/seed_qa_dev.jsonl                         the configured corpus
    qa bench evals/piaf/piaf-v1.0.json --retriever dense --retriever bm25 --retriever hybrid

A dataset is either JSON Lines (`id`, `question`, `answers`, `evidence`,
`answerable`), asked against the configured corpus, or a SQuAD v1.1/v2.0 file
(PIAF, FQuAD), whose distinct contexts become a corpus of their own under
`bench-results/corpora/` with its own index. This module owns reading datasets,
mapping gold answers onto the indexed text, asking every question, scoring, and
the reports; the metric formulas live in `qa.metrics`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import logging
import os
import platform
import random
import re
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from qa import __version__
from qa.answering.assistant import Assistant, clean_question
from qa.answering.retrieval import RETRIEVERS, search
from qa.config import Settings
from qa.errors import QAError
from qa.eval import metrics as m
from qa.index.manifest import Chunker, Manifest
from qa.logs import configure_logging
from qa.schema import Answer, Chunk, Citation, Hit
from qa.text import fold, nfc

log = logging.getLogger(__name__)

DEFAULT_WORK_DIR = Path("bench-results")
# Recall@10 needs ten passages whatever `k` the answers use.
RECALL_DEPTH = 10
# Questions are embedded this many at a time: on two CPU cores a batch embeds a
# question several times faster than a call per question.
QUERY_BATCH = 64
# Questions (the first of the run) also embedded alone, as `qa.answer()` embeds them,
# to time the full call.
DEFAULT_LATENCY_SAMPLE = 100
_ROOT = Path(__file__).resolve().parents[1]


class DatasetError(QAError):
    """The dataset file cannot be read as JSON Lines or SQuAD."""


# ===================================================================== datasets


@dataclass(frozen=True)
class Question:
    """One benchmark question and its gold.

    JSON Lines questions carry `evidence`; SQuAD questions carry the id of their
    context's article, the (answer, offset hint) pairs of the file, and once the
    index is loaded, the gold answer spans in the indexed article text.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    answerable: bool
    evidence: str | None = None
    article_id: str | None = None
    anchors: tuple[tuple[str, int], ...] = ()
    spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Dataset:
    """The questions of a dataset file; for SQuAD also its corpus rows."""

    path: Path
    format: str  # "jsonl" or "squad"
    questions: tuple[Question, ...]
    contexts: tuple[dict, ...] = ()
    skipped: int = 0


def load_dataset(path: Path) -> Dataset:
    """Read a JSON Lines question file or a SQuAD v1.1/v2.0 JSON file."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"Lecture impossible du jeu de questions {path} ({exc}).") from exc
    if path.suffix.lower() != ".jsonl":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            return load_squad(path, data)
    return load_jsonl(path, raw)


def load_jsonl(path: Path, raw: str) -> Dataset:
    """Questions in the format of evals/seed_qa_dev.jsonl, one JSON object a line."""
    questions = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number} : ligne JSON invalide ({exc.msg}).") from None
        questions.append(_jsonl_question(row, path, number))
    if not questions:
        raise DatasetError(f"{path} ne contient aucune question (JSON Lines ou SQuAD attendu).")
    return Dataset(path, "jsonl", tuple(questions))


def _jsonl_question(row: object, path: Path, number: int) -> Question:
    where = f"{path}:{number}"
    if not isinstance(row, dict) or not str(row.get("question") or "").strip():
        raise DatasetError(f'{where} : attendu un objet avec un champ "question" non vide.')
    answers = row.get("answers") or []
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise DatasetError(f'{where} : "answers" doit être une liste de textes.')
    evidence = row.get("evidence")
    return Question(
        id=str(row.get("id") or f"{path.stem}-{number}"),
        question=str(row["question"]),
        answers=tuple(answers),
        answerable=bool(row.get("answerable", bool(answers))),
        evidence=evidence if isinstance(evidence, str) and evidence.strip() else None,
    )


def context_id(title: str, context: str) -> str:
    """Stable article id of a SQuAD context: a hash of its title and text."""
    return "sq-" + hashlib.sha256(f"{title}\x00{context}".encode()).hexdigest()[:16]


def _display_title(title: str) -> str:
    # PIAF titles keep Wikipedia's markup: "<i>Terminator 2</i>".
    return html.unescape(re.sub(r"<[^>]+>", "", title)).replace("_", " ").strip()


def load_squad(path: Path, data: dict) -> Dataset:
    """Every question of a SQuAD file; its distinct contexts become the corpus rows."""
    rows: dict[str, dict] = {}
    questions: list[Question] = []
    skipped = 0
    for entry in data["data"]:
        title = str(entry.get("title") or "")
        for paragraph in entry.get("paragraphs", []):
            context = paragraph.get("context") or ""
            if not context.strip():
                skipped += len(paragraph.get("qas", []))
                continue
            article_id = context_id(title, context)
            rows.setdefault(article_id, {"id": article_id, "title": _display_title(title),
                                         "text": context, "source": path.stem})
            for row in paragraph.get("qas", []):
                question = _squad_question(row, article_id, context)
                skipped += question is None
                if question is not None:
                    questions.append(question)
    if not questions:
        raise DatasetError(f"{path} : aucune question utilisable dans ce fichier SQuAD.")
    return Dataset(path, "squad", tuple(questions), tuple(rows.values()), skipped)


def _squad_question(row: dict, article_id: str, context: str) -> Question | None:
    """A SQuAD question, or None when it has no text or (answerable) no answer."""
    impossible = bool(row.get("is_impossible", False))
    answers = [] if impossible else [a for a in row.get("answers", [])
                                     if str(a.get("text", "")).strip()]
    if not str(row.get("question", "")).strip() or (not impossible and not answers):
        return None
    # The corpus loader strips the context: offsets move left by its leading blanks.
    lead = len(context) - len(context.lstrip())
    anchors: dict[tuple[str, int], None] = {}
    for answer in answers:
        text = answer["text"]
        start = int(answer.get("answer_start", 0)) + len(text) - len(text.lstrip()) - lead
        anchors[(text.strip(), start)] = None
    return Question(
        id=str(row.get("id", "")),
        question=row["question"],
        answers=tuple(dict.fromkeys(text for text, _ in anchors)),
        answerable=not impossible,
        article_id=article_id,
        anchors=tuple(anchors),
    )


def select(questions: Sequence[Question], limit: int | None, seed: int | None) -> list[Question]:
    """The questions to ask: shuffled with `seed` when given, then the first `limit`."""
    chosen = list(questions)
    if seed is not None:
        random.Random(seed).shuffle(chosen)
    return chosen[:limit] if limit else chosen


# ===================================================================== gold spans


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


def map_spans(questions: Sequence[Question], articles: dict) -> list[Question]:
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


def write_squad_corpus(dataset: Dataset, work_dir: Path) -> Path:
    """Write the contexts as a JSON Lines corpus; the folder is named by its content hash,
    so an unchanged dataset finds its corpus and index again."""
    payload = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in dataset.contexts)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
    folder = Path(work_dir) / "corpora" / f"{dataset.path.stem}-{digest}"
    target = folder / "corpus" / "contexts.jsonl"
    if not target.is_file() or target.read_text(encoding="utf-8") != payload:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(".contexts.jsonl.tmp")  # hidden: the loader skips it
        partial.write_text(payload, encoding="utf-8")
        partial.replace(target)
    return folder


# ===================================================================== gold tests


@lru_cache(maxsize=65536)
def _folded(text: str) -> str:
    return fold(text)


def _gold_texts(q: Question) -> tuple[str, ...]:
    return (q.evidence,) if q.evidence else q.answers


def is_gold_chunk(q: Question, chunk: Chunk) -> bool:
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
    return any(is_gold_chunk(q, chunk) for chunk in chunks)


# ===================================================================== asking


def embed_questions(assistant: Assistant, questions: Sequence[Question],
                    ) -> tuple[list[str], np.ndarray]:
    """The cleaned questions and their query vectors, embedded in one batch.

    The same cleaning, model and prompt as `Assistant.answer`; padding inside a batch
    moves a vector by about 1e-7 (float32 rounding), which leaves answers unchanged:
    each run checks it on its latency sample (`vector_mismatch`).
    """
    cleaned = [clean_question(q.question, assistant.settings.max_question_chars)
               for q in questions]
    return cleaned, assistant.embedder.encode(cleaned, "query")


def answer_key(answer: Answer) -> tuple:
    """What two answers to one question must share to count as the same answer."""
    return (answer.text, answer.answered, answer.citations,
            tuple((p.article_id, p.start, p.end) for p in answer.passages))


@dataclass(frozen=True)
class Timing:
    """The stage times of one `answer()` call as `qa.answer()` makes it."""

    retrieve_ms: float
    answer_ms: float
    total_ms: float
    same_answer: bool


def embed_alone(assistant: Assistant, text: str) -> tuple[np.ndarray, float]:
    """The vector `Assistant.answer` computes for a cleaned question, and its time in ms."""
    started = time.perf_counter()
    vector = assistant.embedder.encode([text], "query")[0]
    return vector, (time.perf_counter() - started) * 1000


def timed_answers(assistant: Assistant, text: str, shared: dict[str, Answer],
                  k: int | None) -> dict[str, Timing]:
    """Each retriever's answer as `qa.answer()` computes it, the question embedded alone
    (once for all retrievers, its time counted in each retrieve stage), timed; and
    whether it is the answer from the batch vector."""
    vector, encode_ms = embed_alone(assistant, text)
    timings = {}
    for retriever, answer in shared.items():
        plain = assistant.answer(text, k=k, retriever=retriever, query_vector=vector)
        t = plain.timings
        timings[retriever] = Timing(t["retrieve_ms"] + encode_ms, t["answer_ms"],
                                    t["total_ms"] + encode_ms,
                                    answer_key(plain) == answer_key(answer))
    return timings


def ranking(assistant: Assistant, question: str, vector: np.ndarray, retriever: str) -> list[Hit]:
    """The top `RECALL_DEPTH` passages, by the same search and settings as the answer."""
    settings = assistant.settings
    return search(assistant.index, question, vector, k=RECALL_DEPTH, retriever=retriever,
                  candidates=settings.candidates, rrf_k=settings.rrf_k)


# ===================================================================== scoring


@dataclass(frozen=True)
class Outcome:
    """The scores of one question asked with one retriever."""

    answerable: bool
    answered: bool
    eligible: bool
    gold_rank: int | None
    exact: float
    f1: float
    contains: bool
    citations: tuple[bool, ...]
    supports: tuple[bool, ...]
    prefix_agrees: bool


def score(q: Question, answer: Answer, ranked: Sequence[Hit]) -> Outcome:
    """Score one answer and its top-10 ranking against the question's gold."""
    prediction = m.strip_markers(answer.text) if answer.answered else ""
    shown = [(p.article_id, p.start, p.end) for p in answer.passages]
    prefix = [(h.chunk.article_id, h.chunk.start, h.chunk.end) for h in ranked[:len(shown)]]
    answerable = q.answerable
    return Outcome(
        answerable=answerable,
        answered=answer.answered,
        eligible=retrieval_eligible(q),
        gold_rank=m.first_relevant_rank([is_gold_chunk(q, h.chunk) for h in ranked]),
        exact=m.exact_match(prediction, q.answers) if answerable else 0.0,
        f1=m.token_f1(prediction, q.answers) if answerable else 0.0,
        contains=answerable and m.contains_answer(prediction, q.answers),
        citations=tuple(citation_correct(q, c) for c in answer.citations),
        supports=tuple(citation_supports(q, c) for c in answer.citations),
        # Only meaningful when k <= RECALL_DEPTH: then the answer's passages must be
        # the head of the recall ranking.
        prefix_agrees=len(shown) > RECALL_DEPTH or shown == prefix,
    )


def failure_kind(q: Question, outcome: Outcome) -> str | None:
    """Why an answer is worth reading in the failures file, or None when it is fine."""
    if not q.answerable:
        return "false_answer" if outcome.answered else None
    if not outcome.answered:
        return "false_refusal"
    return None if outcome.contains else "answer_without_gold"


def failure_row(q: Question, retriever: str, answer: Answer, outcome: Outcome,
                kind: str) -> dict:
    return {
        "id": q.id, "retriever": retriever, "kind": kind, "question": q.question,
        "gold": list(q.answers), "evidence": q.evidence, "answerable": q.answerable,
        "answer": answer.text, "answered": answer.answered, "confidence": answer.confidence,
        "cited_quotes": [c.quote for c in answer.citations], "gold_rank": outcome.gold_rank,
        "passages": [p.title for p in answer.passages],
    }


# ===================================================================== the run


@dataclass(frozen=True)
class BenchOptions:
    """What `qa bench` was asked for; `k` None means `settings.top_k`."""

    retrievers: tuple[str, ...] = ("hybrid",)
    k: int | None = None
    limit: int | None = None
    seed: int | None = None
    work_dir: Path = DEFAULT_WORK_DIR
    progress: bool = False
    latency_sample: int = DEFAULT_LATENCY_SAMPLE


@dataclass(frozen=True)
class IndexInfo:
    """How the index was obtained in this run, for the speed figures."""

    built_now: bool
    build_seconds: float | None
    wall_seconds: float | None
    counts: dict


@dataclass(frozen=True)
class BenchResult:
    report: dict
    failures: tuple[dict, ...]


def open_assistant(settings: Settings, embedder=None, progress: bool = False,
                   ) -> tuple[Assistant, IndexInfo]:
    """An assistant over `settings.corpus_dir`, building its index only when needed."""
    assistant = Assistant.load(settings, embedder=embedder, progress=progress)
    return assistant, index_info(assistant)


def index_info(assistant: Assistant) -> IndexInfo:
    """What the benchmark reports of the assistant's index, and of the update it loaded."""
    update, manifest = assistant.last_update, assistant.index.manifest
    return IndexInfo(built_now=update is not None, build_seconds=manifest.build_seconds,
                     wall_seconds=update.seconds if update else None,
                     counts=asdict(manifest.counts))


def index_folder_name(settings: Settings) -> str:
    """One index folder per model and chunking, so that runs comparing them each keep
    their index instead of rebuilding one folder in turn."""
    shape = json.dumps({"model": settings.embedding_model, **asdict(Chunker.of(settings))},
                       sort_keys=True)
    return "index-" + hashlib.sha256(shape.encode()).hexdigest()[:8]


def prepare(dataset: Dataset, settings: Settings, options: BenchOptions, assistant=None,
            embedder=None) -> tuple[Assistant, IndexInfo, Settings]:
    """The assistant to ask: the given one or the configured corpus for JSON Lines, the
    dataset's own corpus and index for SQuAD."""
    if dataset.format == "squad":
        folder = write_squad_corpus(dataset, options.work_dir)
        settings = replace(settings, corpus_dir=folder / "corpus",
                           index_dir=folder / index_folder_name(settings))
        embedder = embedder or (assistant.embedder if assistant else None)
        opened, info = open_assistant(settings, embedder, options.progress)
        return opened, info, settings
    if assistant is not None:
        return assistant, index_info(assistant), assistant.settings
    opened, info = open_assistant(settings, embedder, options.progress)
    return opened, info, settings


@dataclass(frozen=True)
class Asked:
    """One question asked with one retriever: its scores, and its timing when sampled."""

    retriever: str
    outcome: Outcome
    timing: Timing | None
    failure: dict | None


def ask_one(assistant: Assistant, q: Question, text: str, vector: np.ndarray,
            sampled: bool, options: BenchOptions) -> list[Asked]:
    """Ask one question with every retriever, reusing its vector."""
    answers = {r: assistant.answer(text, k=options.k, retriever=r, query_vector=vector)
               for r in options.retrievers}
    timings = timed_answers(assistant, text, answers, options.k) if sampled else {}
    asked = []
    for retriever, answer in answers.items():
        outcome = score(q, answer, ranking(assistant, text, vector, retriever))
        kind = failure_kind(q, outcome)
        failure = failure_row(q, retriever, answer, outcome, kind) if kind else None
        asked.append(Asked(retriever, outcome, timings.get(retriever), failure))
    return asked


def warm_up(assistant: Assistant, q: Question, calls: int = 3) -> None:
    """Untimed calls first: a process's first embeddings pay one-off initialisation
    (hundreds of ms each) that no later question pays."""
    text = clean_question(q.question, assistant.settings.max_question_chars)
    for _ in range(calls):
        embed_alone(assistant, text)


def ask_all(assistant: Assistant, questions: Sequence[Question], options: BenchOptions,
            ) -> list[Asked]:
    """Ask every question with every retriever, embedding the questions in batches."""
    asked: list[Asked] = []
    if options.latency_sample and questions:
        warm_up(assistant, questions[0])
    with tqdm(total=len(questions), desc="bench", unit="q", disable=not options.progress,
              file=sys.stderr) as bar:
        for first in range(0, len(questions), QUERY_BATCH):
            block = questions[first:first + QUERY_BATCH]
            texts, vectors = embed_questions(assistant, block)
            for offset, (q, text, vector) in enumerate(zip(block, texts, vectors, strict=True)):
                sampled = first + offset < options.latency_sample
                asked += ask_one(assistant, q, text, vector, sampled, options)
                bar.update(1)
    return asked


def run_bench(dataset_path: Path, settings: Settings, options: BenchOptions, *,
              assistant: Assistant | None = None, embedder=None) -> BenchResult:
    """Run the benchmark. Pass `assistant` (JSON Lines) or `embedder` to reuse loaded ones."""
    dataset = load_dataset(Path(dataset_path))
    assistant, info, settings = prepare(dataset, settings, options, assistant, embedder)
    questions = select(dataset.questions, options.limit, options.seed)
    if dataset.format == "squad":
        questions = map_spans(questions, assistant.index.articles)
    asked = ask_all(assistant, questions, options)
    extra = dataset_counts(questions, assistant.index.chunks) | {"skipped": dataset.skipped}
    runs = [run_report(r, [a for a in asked if a.retriever == r], info, extra)
            for r in options.retrievers]
    report = {"settings": settings_report(settings, options, dataset, assistant),
              "index": index_report(info), "runs": runs}
    return BenchResult(report, tuple(a.failure for a in asked if a.failure))


# ===================================================================== figures


def dataset_counts(questions: Sequence[Question], chunks: Sequence[Chunk]) -> dict[str, int]:
    """Counts that explain the n of the figures."""
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


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes vs kB


def quality_figures(outcomes: Sequence[Outcome]) -> dict[str, m.Figure]:
    eligible = [o.gold_rank for o in outcomes if o.eligible]
    answerable = [o for o in outcomes if o.answerable]
    answered = [o for o in answerable if o.answered]
    return {
        "recall@1": m.recall_at_k(eligible, 1),
        "recall@5": m.recall_at_k(eligible, 5),
        "recall@10": m.recall_at_k(eligible, 10),
        "mrr": m.mean_reciprocal_rank(eligible),
        "exact_match": m.mean([o.exact for o in answerable]),
        "f1": m.mean([o.f1 for o in answerable]),
        "contains": m.share([o.contains for o in answerable]),
        "citation_precision": m.citation_precision([o.citations for o in answered]),
        "answer_support": m.answer_support([o.supports for o in answered]),
        **m.refusal_rates([(o.answerable, o.answered) for o in outcomes]),
    }


def speed_figures(timings: Sequence[Timing], info: IndexInfo) -> dict[str, m.Figure]:
    n = len(timings)
    figures: dict[str, m.Figure] = {}
    for stage, values in (("latency", [t.total_ms for t in timings]),
                          ("retrieve", [t.retrieve_ms for t in timings]),
                          ("answer", [t.answer_ms for t in timings])):
        for name, q in (("p50", 50), ("p95", 95), ("max", 100)):
            figures[f"{stage}_{name}_ms"] = m.Figure(m.percentile(values, q), n)
    chunks = int(info.counts.get("chunks", 0))
    seconds = info.build_seconds
    figures["index_seconds"] = m.Figure(seconds, chunks)
    figures["chunks_per_second"] = m.Figure(chunks / seconds if seconds else None, chunks)
    figures["peak_rss_mb"] = m.Figure(peak_rss_mb(), 1)
    return figures


def run_report(retriever: str, asked: Sequence[Asked], info: IndexInfo,
               extra: dict[str, int]) -> dict:
    """One entry of "runs": metric values, and their n under the same names in counts."""
    outcomes = [a.outcome for a in asked]
    timings = [a.timing for a in asked if a.timing is not None]
    figures = quality_figures(outcomes) | speed_figures(timings, info)
    metrics = {name: None if f.value is None or f.n == 0 else round(f.value, 4)
               for name, f in figures.items()}
    counts = {name: f.n for name, f in figures.items()} | extra | {
        "answered": sum(o.answered for o in outcomes),
        "prefix_mismatch": sum(not o.prefix_agrees for o in outcomes),
        "vector_mismatch": sum(not t.same_answer for t in timings),
    }
    return {"retriever": retriever, "n": len(outcomes), "metrics": metrics, "counts": counts}


def corpus_hash(manifest: Manifest) -> str:
    """Hash of the corpus files the index was built from."""
    files = json.dumps(manifest.corpus_files, sort_keys=True)
    return hashlib.sha256(files.encode()).hexdigest()[:16]


def git_sha(root: Path = _ROOT) -> str | None:
    """The checked-out commit, read from .git without running git; None when unknown."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = (root / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except (OSError, IndexError):
        return None
    return None


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def settings_report(settings: Settings, options: BenchOptions, dataset: Dataset,
                    assistant: Assistant) -> dict:
    return {
        "model": settings.embedding_model,
        "k": options.k or settings.top_k,
        "retrievers": list(options.retrievers),
        "corpus_dir": str(settings.corpus_dir),
        "index_dir": str(settings.index_dir),
        "corpus_hash": corpus_hash(assistant.index.manifest),
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap": settings.chunk_overlap,
        "candidates": settings.candidates,
        "rrf_k": settings.rrf_k,
        "answer_threshold": settings.answer_threshold,
        "max_citations": settings.max_citations,
        "dataset": {"path": str(dataset.path), "format": dataset.format,
                    "sha256": _file_sha256(dataset.path), "limit": options.limit,
                    "seed": options.seed},
        "version": __version__,
        "git_sha": git_sha(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def index_report(info: IndexInfo) -> dict:
    return {"built_now": info.built_now, "build_seconds": info.build_seconds,
            "load_or_build_seconds": info.wall_seconds, "counts": info.counts}


# ===================================================================== reports

# (metric, label, format): fractions with 3 decimals, times and sizes shorter.
_ROWS = [
    ("recall@1", "recall@1", ".3f"), ("recall@5", "recall@5", ".3f"),
    ("recall@10", "recall@10", ".3f"), ("mrr", "MRR@10", ".3f"),
    ("exact_match", "exact match", ".3f"), ("f1", "token F1", ".3f"),
    ("contains", "contains", ".3f"), ("citation_precision", "citation precision", ".3f"),
    ("answer_support", "answer support", ".3f"), ("refusal_correct", "refusal correct", ".3f"),
    ("false_refusal", "false refusal", ".3f"), ("latency_p50_ms", "latency p50 (ms)", ".0f"),
    ("latency_p95_ms", "latency p95 (ms)", ".0f"), ("latency_max_ms", "latency max (ms)", ".0f"),
    ("retrieve_p50_ms", "retrieve p50 (ms)", ".0f"),
    ("retrieve_p95_ms", "retrieve p95 (ms)", ".0f"),
    ("answer_p50_ms", "answer p50 (ms)", ".1f"), ("answer_p95_ms", "answer p95 (ms)", ".1f"),
    ("index_seconds", "index build (s)", ".1f"), ("chunks_per_second", "chunks/s", ".1f"),
    ("peak_rss_mb", "peak RSS (MB)", ".0f"),
]


def _cell(run: dict, metric: str, spec: str) -> str:
    value = run["metrics"].get(metric)
    shown = "—" if value is None else format(value, spec)
    return f"{shown} ({run['counts'].get(metric, 0)})"


def table_rows(report: dict) -> list[list[str]]:
    """Header and one row per metric: "value (n)" for each retriever."""
    runs = report["runs"]
    rows = [["metric (n)"] + [run["retriever"] for run in runs]]
    rows += [[label] + [_cell(run, metric, spec) for run in runs] for metric, label, spec in _ROWS]
    return rows


def format_table(report: dict) -> str:
    """The terminal table."""
    rows = table_rows(report)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _counts_text(counts: dict) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.items())


def format_markdown(report: dict) -> str:
    """The report for humans: settings, then the metric table."""
    s, index = report["settings"], report["index"]
    counts = report["runs"][0]["counts"] if report["runs"] else {}
    rows = table_rows(report)
    lines = [
        f"# qa bench — {Path(s['dataset']['path']).name}", "",
        f"- {counts.get('questions', 0)} questions ({counts.get('answerable', 0)} answerable, "
        f"{counts.get('unanswerable', 0)} unanswerable); limit {s['dataset']['limit']}, "
        f"seed {s['dataset']['seed']}",
        f"- model `{s['model']}`, k={s['k']}, chunks of {s['chunk_tokens']} tokens "
        f"(overlap {s['chunk_overlap']}), answer threshold {s['answer_threshold']}",
        f"- index: {_counts_text(index['counts'])} built in {index['build_seconds']} s"
        f"{' (this run)' if index['built_now'] else ''}; corpus hash `{s['corpus_hash']}`",
        f"- qa {s['version']}, git {s['git_sha'] or 'unknown'}, {s['date']}, "
        f"{s['machine']['cpus']} CPUs", "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines) + "\n"


def write_outputs(result: BenchResult, json_path: Path | None, markdown_path: Path | None,
                  failures_path: Path | None) -> None:
    for path in (json_path, markdown_path, failures_path):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    if json_path:
        Path(json_path).write_text(json.dumps(result.report, ensure_ascii=False, indent=2) + "\n",
                                   encoding="utf-8")
    if markdown_path:
        Path(markdown_path).write_text(format_markdown(result.report), encoding="utf-8")
    if failures_path:
        Path(failures_path).write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in result.failures),
            encoding="utf-8")


# ===================================================================== command


@click.command("bench")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--limit", type=click.IntRange(min=1), help="Poser au plus N questions.")
@click.option("--seed", type=int, help="Mélanger les questions (déterministe) avant --limit.")
@click.option("--k", "k", type=click.IntRange(1, 100), help="Passages pour répondre (QA_TOP_K).")
@click.option("--retriever", "retrievers", multiple=True, type=click.Choice(RETRIEVERS),
              help="Recherche à évaluer ; répétable pour les comparer (défaut : hybrid).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Écrire le rapport JSON ici.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Écrire le rapport Markdown ici.")
@click.option("--failures", "failures_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Écrire les échecs (JSON Lines) ici.")
@click.option("--latency-sample", type=click.IntRange(min=0), default=DEFAULT_LATENCY_SAMPLE,
              show_default=True,
              help="Questions chronométrées comme qa.answer() (plongement compris).")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_WORK_DIR, show_default=True,
              help="Dossier des corpus et index des jeux SQuAD.")
def bench_command(dataset: Path, limit: int | None, seed: int | None, k: int | None,
                  retrievers: tuple[str, ...], json_path: Path | None,
                  markdown_path: Path | None, failures_path: Path | None, latency_sample: int,
                  work_dir: Path) -> None:
    """Évaluer l'assistant sur DATASET (JSON Lines comme evals/, ou SQuAD/PIAF/FQuAD)."""
    settings = Settings.from_env()
    options = BenchOptions(retrievers=tuple(dict.fromkeys(retrievers)) or (settings.retriever,),
                           k=k, limit=limit, seed=seed, work_dir=work_dir, progress=True,
                           latency_sample=latency_sample)
    result = run_bench(dataset, settings, options)
    click.echo(format_table(result.report))
    write_outputs(result, json_path, markdown_path, failures_path)


def main() -> None:
    """`python -m qa.bench`: the command alone, with the CLI's one-line errors."""
    configure_logging()
    try:
        bench_command(prog_name="python -m qa.bench")
    except QAError as exc:
        click.echo(f"Erreur : {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
