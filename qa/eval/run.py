"""The run of `qa bench`: the assistant to ask (the configured corpus, or a SQuAD
file's own corpus and index), every question asked with every retriever, the latency
sample timed as `qa.answer()` runs, and the report assembled from the scores.

Every answer is an `Assistant.answer()` call, the code path of `qa ask` and the web
app; the questions are embedded in batches and their vectors handed in.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qa.answering.assistant import Assistant, clean_question, default_answerer
from qa.answering.retrieval import search
from qa.config import Settings
from qa.embeddings import Embedder
from qa.eval.datasets import (
    Dataset,
    Question,
    in_split,
    load_dataset,
    select,
    write_squad_corpus,
)
from qa.eval.gold import dataset_counts, map_spans
from qa.eval.report import index_report, run_report, settings_report
from qa.eval.scoring import RECALL_DEPTH, Outcome, failure_kind, failure_row, score
from qa.index.manifest import Chunker
from qa.schema import Answer, Hit

DEFAULT_WORK_DIR = Path("bench-results")
# Questions are embedded this many at a time: on two CPU cores a batch embeds a
# question several times faster than a call per question.
QUERY_BATCH = 64
# Questions (the first of the run) also embedded alone, as `qa.answer()` embeds them,
# to time the full call.
DEFAULT_LATENCY_SAMPLE = 100


@dataclass(frozen=True)
class BenchOptions:
    """What `qa bench` was asked for; `k` None means `settings.top_k`, no `answerers`
    the one the settings choose, `split` None every question."""

    retrievers: tuple[str, ...] = ("hybrid",)
    answerers: tuple[str, ...] = ()
    split: str | None = None
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
    """The report (`settings`, `index`, `runs`) and the failures file's rows."""

    report: dict
    failures: tuple[dict, ...]


@dataclass(frozen=True)
class Timing:
    """The stage times of one `answer()` call as `qa.answer()` makes it."""

    retrieve_ms: float
    answer_ms: float
    total_ms: float
    same_answer: bool


@dataclass(frozen=True)
class Asked:
    """One question asked with one retriever and one answerer: its scores, and its
    timing when sampled."""

    retriever: str
    answerer: str
    outcome: Outcome
    timing: Timing | None
    failure: dict | None


def open_assistant(settings: Settings, embedder: Embedder | None = None,
                   progress: bool = False) -> tuple[Assistant, IndexInfo]:
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
    shape = {"model": settings.embedding_model, **asdict(Chunker.of(settings))}
    if settings.backend != "torch":  # torch's folders keep the name they had before backends
        shape["backend"] = settings.backend
    shape = json.dumps(shape, sort_keys=True)
    return "index-" + hashlib.sha256(shape.encode()).hexdigest()[:8]


def dataset_collection(settings: Settings, folder: Path) -> str:
    """With QA_STORE=qdrant, each data set keeps its own collection (alias), named by
    the configured one, the data set's content and the model and chunking."""
    name = f"{settings.qdrant_collection}-{folder.name}-{index_folder_name(settings)[6:]}"
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)


def prepare(dataset: Dataset, settings: Settings, options: BenchOptions,
            assistant: Assistant | None = None, embedder: Embedder | None = None,
            ) -> tuple[Assistant, IndexInfo, Settings]:
    """The assistant to ask: the given one or the configured corpus for JSON Lines, the
    dataset's own corpus and index for SQuAD."""
    if dataset.format == "squad":
        folder = write_squad_corpus(dataset, options.work_dir)
        settings = replace(settings, corpus_dir=folder / "corpus",
                           index_dir=folder / index_folder_name(settings),
                           qdrant_collection=dataset_collection(settings, folder))
        embedder = embedder or (assistant.embedder if assistant else None)
        opened, info = open_assistant(settings, embedder, options.progress)
        return opened, info, settings
    if assistant is not None:
        return assistant, index_info(assistant), assistant.settings
    opened, info = open_assistant(settings, embedder, options.progress)
    return opened, info, settings


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


def embed_alone(assistant: Assistant, text: str) -> tuple[np.ndarray, float]:
    """The vector `Assistant.answer` computes for a cleaned question, and its time in ms."""
    started = time.perf_counter()
    vector = assistant.embedder.encode([text], "query")[0]
    return vector, (time.perf_counter() - started) * 1000


# One benchmark run: a retriever and an answerer's name.
Config = tuple[str, str]


def timed_answers(assistants: dict[str, Assistant], text: str,
                  shared: dict[Config, Answer], k: int | None) -> dict[Config, Timing]:
    """Each run's answer as `qa.answer()` computes it, the question embedded alone
    (once for all runs, its time counted in each retrieve stage), timed; and whether it
    is the answer from the batch vector."""
    vector, encode_ms = embed_alone(next(iter(assistants.values())), text)
    timings = {}
    for (retriever, answerer), answer in shared.items():
        plain = assistants[answerer].answer(text, k=k, retriever=retriever,
                                            query_vector=vector)
        t = plain.timings
        timings[retriever, answerer] = Timing(t["retrieve_ms"] + encode_ms, t["answer_ms"],
                                              t["total_ms"] + encode_ms,
                                              answer_key(plain) == answer_key(answer))
    return timings


def ranking(assistant: Assistant, question: str, vector: np.ndarray, retriever: str) -> list[Hit]:
    """The top `RECALL_DEPTH` passages, by the same search and settings as the answer."""
    settings = assistant.settings
    return search(assistant.index, question, vector, k=RECALL_DEPTH, retriever=retriever,
                  candidates=settings.candidates, rrf_k=settings.rrf_k)


def configs(options: BenchOptions, assistants: dict[str, Assistant]) -> list[Config]:
    """Every (retriever, answerer) run, retrievers first."""
    return [(r, a) for r in options.retrievers for a in assistants]


def ask_one(assistants: dict[str, Assistant], q: Question, text: str, vector: np.ndarray,
            sampled: bool, options: BenchOptions) -> list[Asked]:
    """Ask one question in every run, reusing its vector."""
    answers = {(r, a): assistants[a].answer(text, k=options.k, retriever=r,
                                            query_vector=vector)
               for r, a in configs(options, assistants)}
    timings = timed_answers(assistants, text, answers, options.k) if sampled else {}
    asked, rankings = [], {}
    for (retriever, answerer), answer in answers.items():
        if retriever not in rankings:
            rankings[retriever] = ranking(assistants[answerer], text, vector, retriever)
        outcome = score(q, answer, rankings[retriever])
        kind = failure_kind(q, outcome)
        failure = (failure_row(q, retriever, answerer, answer, outcome, kind)
                   if kind else None)
        asked.append(Asked(retriever, answerer, outcome, timings.get((retriever, answerer)),
                           failure))
    return asked


def warm_up(assistants: dict[str, Assistant], q: Question, calls: int = 3) -> None:
    """Untimed calls first: a process's first embeddings and reader passes pay one-off
    initialisation (hundreds of ms each) that no later question pays."""
    for assistant in assistants.values():
        for _ in range(calls):
            assistant.answer(q.question)


def answerers_of(assistant: Assistant, names: Sequence[str]) -> dict[str, Assistant]:
    """One assistant per answerer name, sharing the model and the index; no names: the
    assistant as it is, under its settings' answerer."""
    if not names:
        return {assistant.settings.answerer: assistant}
    return {name: Assistant(assistant.settings, assistant.embedder, assistant.index,
                            default_answerer(replace(assistant.settings, answerer=name)))
            for name in names}


def ask_all(assistants: dict[str, Assistant], questions: Sequence[Question],
            options: BenchOptions) -> list[Asked]:
    """Ask every question in every run, embedding the questions in batches."""
    assistant = next(iter(assistants.values()))
    asked: list[Asked] = []
    if options.latency_sample and questions:
        warm_up(assistants, questions[0])
    with tqdm(total=len(questions), desc="bench", unit="q", disable=not options.progress,
              file=sys.stderr) as bar:
        for first in range(0, len(questions), QUERY_BATCH):
            block = questions[first:first + QUERY_BATCH]
            texts, vectors = embed_questions(assistant, block)
            for offset, (q, text, vector) in enumerate(zip(block, texts, vectors, strict=True)):
                sampled = first + offset < options.latency_sample
                asked += ask_one(assistants, q, text, vector, sampled, options)
                bar.update(1)
    return asked


def run_bench(dataset_path: Path, settings: Settings, options: BenchOptions, *,
              assistant: Assistant | None = None, embedder: Embedder | None = None,
              ) -> BenchResult:
    """Run the benchmark. Pass `assistant` (JSON Lines) or `embedder` to reuse loaded ones."""
    dataset = load_dataset(Path(dataset_path))
    assistant, info, settings = prepare(dataset, settings, options, assistant, embedder)
    questions = select(in_split(dataset, options.split), options.limit, options.seed)
    if dataset.format == "squad":
        questions = map_spans(questions, assistant.index.articles)
    assistants = answerers_of(assistant, options.answerers)
    asked = ask_all(assistants, questions, options)
    extra = dataset_counts(questions, assistant.index.chunks) | {"skipped": dataset.skipped}
    runs = [run_report(r, a, [x for x in asked if (x.retriever, x.answerer) == (r, a)],
                       info, extra)
            for r, a in configs(options, assistants)]
    report = {"settings": settings_report(settings, options, dataset, assistant),
              "index": index_report(info), "runs": runs}
    return BenchResult(report, tuple(a.failure for a in asked if a.failure))

