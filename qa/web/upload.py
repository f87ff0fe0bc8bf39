"""« Ajouter des articles »: uploaded files into the index, and the report on each.

Owns `add_articles()` (what one « Indexer » click does, through `Assistant.add`), the
report it shows (the articles added, each file left aside with its reason, what the
corpus now holds) and the list of indexed articles under it. Nothing here touches
Gradio, so the tests call it directly.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.answering.assistant import Assistant
from qa.corpus import READERS
from qa.errors import QAError
from qa.index.updates import AddResult
from qa.schema import Article
from qa.web.render import corpus_summary, header, plural, render_template

log = logging.getLogger(__name__)

UPLOAD_FORMATS = tuple(READERS)
NO_FILE_HINT = ("Choisissez d'abord un ou plusieurs fichiers d'articles "
                f"({', '.join(UPLOAD_FORMATS)}), puis cliquez sur « Indexer ».")
UPLOAD_HINT = ("Déposez des fichiers d'articles puis cliquez sur « Indexer » : ils rejoignent "
               "le corpus sans interrompre les questions en cours.")
UPLOAD_ERROR_MESSAGE = ("Désolé, l'indexation a échoué. Les articles déjà indexés restent "
                        "disponibles : réessayez dans un instant.")
NOT_INDEXED_REASON = ("copié dans le corpus, mais aucun article n'en a été indexé — voyez le "
                      "journal du serveur")
ID_TAKEN_REASON = ("copié dans le corpus, mais non indexé : l'identifiant « {id} » est déjà celui "
                   "d'un autre article — renommez le fichier et envoyez-le de nouveau")
# Titles listed under the upload: enough to check an upload landed, short enough to scroll.
LISTED_ARTICLES = 200

Progress = Callable[..., object]


@dataclass(frozen=True)
class Upload:
    """What one « Indexer » click changes: its status, the header, the list of articles."""

    status: str
    header: str
    corpus: str
    done: bool  # the files were handled (whatever became of each): the picker can be emptied


def upload_status(message: str, kind: str) -> str:
    """A one-line status under the upload: `kind` is qa-upload-hint or qa-upload-error."""
    return render_template("upload_status.html", message=message, kind=kind)


def corpus_list(assistant: Assistant, limit: int = LISTED_ARTICLES) -> str:
    """The titles of the indexed articles (with source and date), folded."""
    articles = list(assistant.index.articles.values())
    return render_template("corpus_list.html", articles=articles[:limit], total=len(articles))


def file_paths(files: object) -> list[Path]:
    """The uploaded files as paths, whatever shape the component or a test gives."""
    if files is None:
        return []
    items = files if isinstance(files, list | tuple) else [files]
    # Gradio gives path strings; a file object (API, older Gradio) carries its path.
    return [Path(f if isinstance(f, str | os.PathLike) else getattr(f, "path", None) or f.name)
            for f in items if f]


def shown_reason(reason: str, uploaded: Sequence[Path]) -> str:
    """The engine names a file by its full path; the reader knows it by its name only,
    and where the server keeps uploads is none of their business."""
    for path in uploaded:
        if reason.startswith(str(path)):
            return path.name + reason[len(str(path)):]
    return reason


def articles_from(files: Sequence[str], assistant: Assistant) -> tuple[list[Article], list[str]]:
    """The indexed articles that come from `files` (copies in the corpus folder), and
    the names of the files none came from (the corpus refused them, see its log)."""
    root = Path(assistant.settings.corpus_dir).parent
    by_file: dict[Path, list[Article]] = {}
    for article in assistant.index.articles.values():
        if article.path:
            by_file.setdefault((root / article.path).resolve(), []).append(article)
    found, orphans = [], []
    for name in files:
        articles = by_file.get(Path(name).resolve(), [])
        found += articles
        if not articles:
            orphans.append(Path(name).name)
    return found, orphans


def _not_indexed_reason(name: str, assistant: Assistant) -> str:
    # The engine skips content it already holds, not a new text under a taken id (a
    # file's id is its name): the corpus then refuses it, in its log only.
    stem = Path(name).stem
    if stem in assistant.index.articles:
        return ID_TAKEN_REASON.format(id=stem)
    return NOT_INDEXED_REASON


def outcome(result: AddResult, assistant: Assistant, uploaded: Sequence[Path],
            refused: Sequence[str] = ()) -> tuple[list[Article], list[str]]:
    """The articles an upload added, and « name : reason » for each file left aside:
    those refused before the engine (`refused`), then those the engine skipped."""
    added, orphans = articles_from(result.copied, assistant)
    skipped = [*refused, *(shown_reason(r, uploaded) for r in result.skipped)]
    skipped += [f"{name} : {_not_indexed_reason(name, assistant)}" for name in orphans]
    return added, skipped


def format_upload(result: AddResult, assistant: Assistant, uploaded: Sequence[Path],
                  refused: Sequence[str] = ()) -> str:
    """The outcome of an upload: the articles added (with what it cost), then each file
    left aside with its reason, then what the corpus now holds."""
    added, skipped = outcome(result, assistant, uploaded, refused)
    return render_template("upload_report.html", kind="", added=added, report=result.report,
                           skipped=skipped, summary=corpus_summary(assistant))


def add_articles(files: object, assistant: Assistant, progress: Progress | None = None,
                 refused: Sequence[str] = ()) -> Upload:
    """Index uploaded files (paths in Gradio's temporary folder, under their own name).

    The engine copies them into the corpus folder and swaps the index in one
    assignment, so questions asked meanwhile are answered from the previous state. A
    file it cannot use is listed with its reason, after the `refused` ones (files the
    server's checks kept from the engine); a failure is a short French message (logged
    here with its traceback), never a stack trace in the page.
    """
    paths = file_paths(files)
    if not paths and refused:  # every file was refused before the engine
        return Upload(render_template("upload_report.html", kind="", added=[], report=None,
                                      skipped=list(refused), summary=corpus_summary(assistant)),
                      header(assistant), corpus_list(assistant), done=True)
    if not paths:
        return Upload(upload_status(NO_FILE_HINT, "qa-upload-hint"), header(assistant),
                      corpus_list(assistant), done=False)

    def steps(done: int, total: int) -> None:
        # Encoding is the long part of indexing: the bar follows it, batch by batch.
        progress(done / total, desc=f"Encodage des passages et des phrases : {done} / {total}")

    if progress is not None:
        progress(0, desc=f"Indexation de {plural(len(paths), 'fichier')}…")
    started = time.perf_counter()
    try:
        result = assistant.add(paths, progress=False,
                               on_progress=steps if progress is not None else None)
    except QAError as exc:  # written for readers: says what happened and what to do
        log.warning("upload not indexed: %s", exc)
        message = shown_reason(str(exc), paths)
    except Exception:
        log.exception("failed to index %s", [p.name for p in paths])
        message = UPLOAD_ERROR_MESSAGE
    else:
        log.info("upload of %d file(s) handled in %.1f s: %d copied, %d skipped", len(paths),
                 time.perf_counter() - started, len(result.copied), len(result.skipped))
        return Upload(format_upload(result, assistant, paths, refused), header(assistant),
                      corpus_list(assistant), done=True)
    # The files stay in the picker: the reader can try again without choosing them anew.
    return Upload(upload_status(message, "qa-upload-error"), header(assistant),
                  corpus_list(assistant), done=False)
