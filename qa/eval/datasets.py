"""The question sets of `qa bench`: reading JSON Lines and SQuAD files, choosing the
questions to ask, and writing a SQuAD file's contexts as a corpus of its own.

A dataset is either JSON Lines (`id`, `question`, `answers`, `evidence`,
`answerable`), asked against the configured corpus, or a SQuAD v1.1/v2.0 file
(PIAF, FQuAD), whose distinct contexts become a corpus under
`bench-results/corpora/` with its own index.
"""

from __future__ import annotations

import hashlib
import html
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.errors import QAError
from qa.reader.data import split_of


class DatasetError(QAError):
    """The dataset file cannot be read as JSON Lines or SQuAD."""


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
    title: str | None = None  # SQuAD: the article title as in the file, for splits


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
                question = _squad_question(row, article_id, context, title)
                skipped += question is None
                if question is not None:
                    questions.append(question)
    if not questions:
        raise DatasetError(f"{path} : aucune question utilisable dans ce fichier SQuAD.")
    return Dataset(path, "squad", tuple(questions), tuple(rows.values()), skipped)


def _squad_question(row: dict, article_id: str, context: str,
                    title: str) -> Question | None:
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
        title=title,
    )


def in_split(dataset: Dataset, split: str | None) -> tuple[Question, ...]:
    """The questions of one split by article (the reader's train/dev/test), or all.

    The split is the reader's own (`qa.reader.data.split_of`): a figure on "dev" or
    "test" comes from Wikipedia articles the shipped reader never trained on.
    """
    if split is None:
        return dataset.questions
    if dataset.format != "squad":
        raise DatasetError(f"--split {split} : seuls les fichiers SQuAD se découpent par "
                           f"article ; {dataset.path.name} est en JSON Lines.")
    return tuple(q for q in dataset.questions if split_of(q.title or "") == split)


def select(questions: Sequence[Question], limit: int | None, seed: int | None) -> list[Question]:
    """The questions to ask: shuffled with `seed` when given, then the first `limit`."""
    chosen = list(questions)
    if seed is not None:
        random.Random(seed).shuffle(chosen)
    return chosen[:limit] if limit else chosen


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
