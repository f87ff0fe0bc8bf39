"""The web chat: page layout, answer and source formatting, and the `qa serve` command.

`create_app(assistant)` builds the Gradio page (it does not launch it); `respond()`
turns one reader message into the chat messages and the sources panel, and
`add_articles()` indexes uploaded files and says what became of each, so the tests
can check both without a browser; `serve_command` (`qa serve`) and `main()`
(`python app.py`) load the assistant, building the index first, then launch.

Everything shown comes from the reader or from the articles, so every piece of text
goes through `esc()` before it is put into HTML: nothing a reader types or an article
holds can become markup or script. Gradio is imported inside functions only, so that
`qa --help` does not pay for it.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from qa.answering.assistant import Assistant
from qa.answering.conversation import context_questions, contextualize
from qa.config import Settings
from qa.corpus.readers import READERS
from qa.errors import EmptyQuestion, QAError
from qa.index.updates import AddResult
from qa.schema import Answer, Article, Citation, Passage
from qa.text import split_sentences

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger(__name__)

APP_TITLE = "Questions sur l'actualité"
EXAMPLE_QUESTIONS = (
    "Quelle est la peine prévue ?",
    "Pourquoi le gouvernement veut-il suspendre Shein ?",
    "Quelles associations récoltent des contenus signalés ?",
    "Qui a menacé Shein d'interdiction ?",
)
EMPTY_HINT = "Écrivez une question sur les articles, par exemple « Quelle est la peine prévue ? »."
ERROR_MESSAGE = ("Désolé, une erreur est survenue. Réessayez dans un instant ou reformulez "
                 "la question.")
CLOSEST_HEADING = "Passages les plus proches"
# Closest passages listed under a refusal: enough to judge, few enough to read.
SHOWN_PASSAGES = 3
# Characters of a passage quoted in the chat under a refusal (the panel has it whole).
CHAT_EXCERPT_CHARS = 220
# The engine is CPU-bound and torch already spreads one question over every core:
# answering many at once would not be faster, so the queue answers two at a time (a
# slow question does not hold everyone up) and keeps the others waiting in order.
ANSWER_CONCURRENCY = 2
QUEUE_MAX_SIZE = 64
# The engine accepts one writer at a time anyway; a queue of its own keeps an upload
# from taking one of the answer slots, so readers are answered while it indexes.
UPLOAD_CONCURRENCY = 1
UPLOAD_FORMATS = tuple(READERS)
# News articles are small, even as PDF: a bigger upload is a mistake or an abuse.
MAX_UPLOAD_SIZE = "25mb"
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

_MARKER = re.compile(r"\[(\d+)\]")
_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


# --------------------------------------------------------------------------- escaping

def esc(text: object) -> str:
    """Text made inert inside HTML, attributes included.

    Braces and dollar signs are encoded too: the HTML component fills a template, and
    an article or a reader may write « {{x}} » or « ${x} ».
    """
    escaped = html.escape(str(text), quote=True)
    return escaped.replace("{", "&#123;").replace("}", "&#125;").replace("$", "&#36;")


def _lines(text: str) -> str:
    """Escaped text whose line breaks survive inside one HTML block of the chat."""
    return "<br>".join(esc(line) for line in text.splitlines() or [""])


# --------------------------------------------------------------------------- metadata

def french_date(date: str) -> str:
    """« 2026-01-02 » → « 2 janvier 2026 »; anything else is returned as it is."""
    match = _ISO_DATE.match(date or "")
    if not match:
        return date or ""
    year, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12:
        return date
    return f"{'1er' if day == 1 else day} {_MONTHS[month - 1]} {year}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count > 1 else ''}"


def corpus_summary(assistant: Assistant) -> str:
    """« 3 articles, 7 passages »: what the loaded index holds."""
    counts = assistant.index.manifest.counts
    return f"{_plural(counts.articles, 'article')}, {_plural(counts.chunks, 'passage')}"


def corpus_examples(assistant: Assistant, candidates: Sequence[str] = EXAMPLE_QUESTIONS,
                    limit: int = 4) -> list[str]:
    """The example questions the loaded articles answer, so that another corpus is not
    offered examples about articles it does not hold (a few milliseconds each)."""
    kept = []
    for question in candidates:
        try:
            if assistant.answer(question).answered:
                kept.append(question)
        except Exception:  # an example is a nicety: never a reason not to start
            log.exception("example question %r failed", question)
        if len(kept) == limit:
            break
    return kept


# --------------------------------------------------------------------------- highlighting

@dataclass(frozen=True)
class Mark:
    """A span of an article to highlight; `anchor` becomes the element's id."""

    start: int
    end: int
    n: int
    anchor: str = ""


def highlight(text: str, marks: Iterable[Mark], offset: int = 0) -> str:
    """`text` (which starts at `offset` in its article) as escaped HTML paragraphs, with
    each mark inside it wrapped in `<mark>`. Overlapping marks keep the first one."""
    spans = sorted((m for m in marks if m.end > offset and m.start < offset + len(text)),
                   key=lambda m: (m.start, m.n))
    pieces, at = [], 0
    for m in spans:
        start, end = max(m.start - offset, at), min(m.end - offset, len(text))
        if start >= end:
            continue
        anchor = f' id="{esc(m.anchor)}" tabindex="-1"' if m.anchor else ""
        pieces.append(esc(text[at:start]))
        pieces.append(f'<mark class="qa-mark" data-n="{m.n}"{anchor}>'
                      f"{esc(text[start:end])}</mark>")
        at = end
    pieces.append(esc(text[at:]))
    body = "".join(pieces)
    # Paragraph breaks of the article text: sentences never cross them, so no mark does.
    paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
    return "".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in paragraphs)


def context_span(article: Article, start: int, end: int) -> tuple[int, int]:
    """The cited span with the sentence before and the sentence after it."""
    spans = split_sentences(article.text)
    before = [s for s, e in spans if e <= start]
    after = [e for s, e in spans if s >= end]
    return (before[-1] if before else start), (after[0] if after else end)


def _excerpt(article: Article, start: int, end: int, marks: Sequence[Mark]) -> str:
    """Part of an article as paragraphs, with « … » where the article goes on."""
    body = highlight(article.text[start:end], marks, offset=start)
    if start > 0:
        body = "<p>… " + body.removeprefix("<p>")
    if end < len(article.text.rstrip()):
        body = body.removesuffix("</p>") + " …</p>"
    return body


# --------------------------------------------------------------------------- chat messages

def cite_anchor(turn: int, n: int) -> str:
    """The id of the highlighted sentence that `[n]` of answer number `turn` points to."""
    return f"cite-{turn}-{n}"


def format_question(question: str) -> str:
    """The reader's message as shown in the chat: literal text, never markup."""
    return f'<div class="qa-question">{_lines(question)}</div>'


def format_answer(answer: Answer, turn: int) -> str:
    """The answer text for the chat, each `[n]` a link to its sentence in the sources."""
    known = {c.n for c in answer.citations}
    pieces, at = [], 0
    for match in _MARKER.finditer(answer.text):
        n = int(match.group(1))
        if n not in known:
            continue
        pieces.append(esc(answer.text[at:match.start()]))
        anchor = cite_anchor(turn, n)
        pieces.append(f'<a class="qa-cite-ref" href="#{anchor}" '
                      f'title="Voir la phrase citée [{n}]">[{n}]</a>')
        at = match.end()
    pieces.append(esc(answer.text[at:]))
    return f'<div class="qa-answer">{"".join(pieces)}</div>'


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def format_refusal(answer: Answer) -> str:
    """A plain « not found », then the closest passages: never an invented answer."""
    items = "".join(
        f'<li><span class="qa-title">{esc(p.title)}</span> : '
        f"« {esc(_short(p.text, CHAT_EXCERPT_CHARS))} »</li>"
        for p in _closest(answer.passages)
    )
    closest = (f'<p class="qa-closest-heading"><strong>{CLOSEST_HEADING}</strong></p>'
               f"<ol>{items}</ol>") if items else ""
    return f'<div class="qa-answer qa-refusal"><p>{esc(answer.text)}</p>{closest}</div>'


def format_notice(text: str) -> str:
    """A short message of the app itself (hint, error) for the chat."""
    return f'<div class="qa-notice">{_lines(text)}</div>'


def _closest(passages: Sequence[Passage]) -> list[Passage]:
    return list(passages[:SHOWN_PASSAGES])


# --------------------------------------------------------------------------- sources panel

def _meta_line(article: Article | None, source: str, date: str) -> str:
    parts = [esc(p) for p in (source, french_date(date)) if p]
    url = article.url if article else ""
    if url.startswith(("https://", "http://")):
        parts.append(f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">'
                     "article original</a>")
    return " · ".join(parts)


def _full_article(article: Article, marks: Sequence[Mark]) -> str:
    return ('<details class="qa-full"><summary>Lire l\'article complet</summary>'
            f'<div class="qa-full-text">{highlight(article.text, marks)}</div></details>')


def _citation_card(c: Citation, article: Article | None, turn: int,
                   article_marks: Sequence[Mark]) -> str:
    own = Mark(c.start, c.end, c.n, cite_anchor(turn, c.n))
    if article is None:  # the index always has it; a quote alone still says enough
        excerpt = f'<p><mark class="qa-mark" id="{esc(own.anchor)}">{esc(c.quote)}</mark></p>'
        full = ""
    else:
        excerpt = _excerpt(article, *context_span(article, c.start, c.end), [own])
        full = _full_article(article, article_marks)
    return (f'<article class="qa-card" id="source-{turn}-{c.n}">'
            f'<header><span class="qa-badge">{c.n}</span><div><h3>{esc(c.title)}</h3>'
            f'<p class="qa-meta">{_meta_line(article, c.source, c.date)}</p></div></header>'
            f'<blockquote class="qa-excerpt">{excerpt}</blockquote>{full}</article>')


def _passage_card(p: Passage, article: Article | None, rank: int) -> str:
    if article is None:
        text, meta, full = f"<p>{esc(p.text)}</p>", "", ""
    else:
        text = highlight(p.text, [], offset=p.start)
        meta, full = _meta_line(article, article.source, article.date), _full_article(article, [])
    return (f'<article class="qa-card qa-passage"><header><span class="qa-badge">{rank}</span>'
            f'<div><h3>{esc(p.title)}</h3><p class="qa-meta">{meta}</p></div></header>'
            f'<blockquote class="qa-excerpt">{text}</blockquote>{full}</article>')


def format_sources(answer: Answer, articles: dict[str, Article], turn: int) -> str:
    """The sources of one answer: a card per citation (title, source, date, the cited
    sentence highlighted in its context, the whole article on demand), or under a
    refusal the closest passages."""
    if not answer.answered:
        cards = "".join(_passage_card(p, articles.get(p.article_id), rank)
                        for rank, p in enumerate(_closest(answer.passages), start=1))
        note = ("" if cards else "<p>Aucun passage n'a été retrouvé.</p>")
        return f'<h3 class="qa-closest-heading">{CLOSEST_HEADING}</h3>{note}{cards}'
    marks: dict[str, list[Mark]] = {}
    for c in answer.citations:
        marks.setdefault(c.article_id, []).append(Mark(c.start, c.end, c.n))
    return "".join(_citation_card(c, articles.get(c.article_id), turn, marks.get(c.article_id, []))
                   for c in answer.citations)


@dataclass(frozen=True)
class Section:
    """The sources of one exchange, as kept in the session between messages."""

    turn: int
    question: str
    context: tuple[str, ...]  # the earlier questions a follow-up was read with
    body: str

    def to_state(self) -> dict[str, Any]:
        return {"turn": self.turn, "question": self.question, "context": list(self.context),
                "body": self.body}


def render_panel(sections: Sequence[dict[str, Any]]) -> str:
    """The whole sources panel: the latest exchange open, the earlier ones folded."""
    if not sections:
        return ('<div class="qa-sources"><h2>Sources</h2><p class="qa-empty">Les sources de '
                "chaque réponse s'affichent ici : l'article, sa date et la phrase citée, "
                "surlignée dans son contexte. Cliquez sur un numéro [1] de la réponse pour "
                "y aller.</p></div>")
    blocks = []
    for i, s in enumerate(reversed(sections)):
        context = ""
        if s.get("context"):
            earlier = " puis ".join(f"« {esc(_short(q, 160))} »" for q in s["context"])
            context = f'<p class="qa-context">Comprise comme la suite de {earlier}.</p>'
        blocks.append(
            f'<details class="qa-turn" id="turn-{s["turn"]}"{" open" if i == 0 else ""}>'
            f'<summary>Question {s["turn"]} : « {esc(_short(s["question"], 120))} »</summary>'
            f'{context}{s["body"]}</details>')
    return f'<div class="qa-sources"><h2>Sources</h2>{"".join(blocks)}</div>'


# --------------------------------------------------------------------------- one exchange

@dataclass(frozen=True)
class Reply:
    """What one message changes: the chat, the session's questions and sources, the panel."""

    history: list[dict[str, Any]]
    asked: list[str]
    sections: list[dict[str, Any]]
    panel: str
    answer: Answer | None = None


def _bounded(message: str, limit: int) -> tuple[str, bool]:
    """The message cut to what the engine reads, and whether it was cut."""
    return (message[:limit], True) if len(message) > limit else (message, False)


def respond(message: str | None, history: Sequence[dict[str, Any]] | None,
            asked: Sequence[str] | None, sections: Sequence[dict[str, Any]] | None,
            assistant: Assistant) -> Reply:
    """Answer one reader message in the context of the session.

    `history` is the chat (messages format), `asked` the reader's earlier questions
    (for follow-ups, see `qa.conversation`), `sections` the earlier sources. An empty
    message gets a hint without calling the engine; any failure a short French message
    (logged here with its traceback), never a stack trace in the page.
    """
    history, asked, sections = list(history or []), list(asked or []), list(sections or [])
    message = message if isinstance(message, str) else ""
    if not message.strip():
        history.append({"role": "assistant", "content": format_notice(EMPTY_HINT)})
        return Reply(history, asked, sections, render_panel(sections))
    question, cut = _bounded(message, assistant.settings.max_question_chars)
    history.append({"role": "user", "content": format_question(question)})
    turn = len(sections) + 1
    query = contextualize(question, asked)
    context = tuple(context_questions(asked)) if query != question else ()
    try:
        answer = assistant.answer(query)
    except EmptyQuestion:
        history.append({"role": "assistant", "content": format_notice(EMPTY_HINT)})
        return Reply(history, asked, sections, render_panel(sections))
    except QAError as exc:  # written for readers: says what happened and what to do
        log.warning("question not answered: %s", exc)
        history.append({"role": "assistant", "content": format_notice(str(exc))})
        return Reply(history, asked, sections, render_panel(sections))
    except Exception:
        log.exception("failed to answer %r", query[:200])
        history.append({"role": "assistant", "content": format_notice(ERROR_MESSAGE)})
        return Reply(history, asked, sections, render_panel(sections))
    content = format_answer(answer, turn) if answer.answered else format_refusal(answer)
    if cut:
        content += format_notice(f"(Question tronquée à ses {len(question)} premiers caractères.)")
    history.append({"role": "assistant", "content": content})
    section = Section(turn, question, context,
                      format_sources(answer, assistant.index.articles, turn)).to_state()
    sections.append(section)
    asked.append(question)
    return Reply(history, asked, sections, render_panel(sections), answer)


# --------------------------------------------------------------------------- uploads

Progress = Callable[..., object]


@dataclass(frozen=True)
class Upload:
    """What one « Indexer » click changes: its status, the header, the list of articles."""

    status: str
    header: str
    corpus: str
    done: bool  # the files were handled (whatever became of each): the picker can be emptied


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f}".replace(".", ",")


def _agreed(count: int, word: str) -> str:
    """« ajouté » or « ajoutés », after `count`."""
    return f"{word}{'s' if count > 1 else ''}"


def _file_paths(files: object) -> list[Path]:
    """The uploaded files as paths, whatever shape the component or a test gives."""
    if files is None:
        return []
    items = files if isinstance(files, list | tuple) else [files]
    # Gradio gives path strings; a file object (API, older Gradio) carries its path.
    return [Path(f if isinstance(f, str | os.PathLike) else getattr(f, "path", None) or f.name)
            for f in items if f]


def _shown_reason(reason: str, uploaded: Sequence[Path]) -> str:
    """The engine names a file by its full path; the reader knows it by its name only,
    and where the server keeps uploads is none of their business."""
    for path in uploaded:
        if reason.startswith(str(path)):
            return path.name + reason[len(str(path)):]
    return reason


def _articles_from(files: Sequence[str], assistant: Assistant) -> tuple[list[Article], list[str]]:
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


def format_upload(result: AddResult, assistant: Assistant, uploaded: Sequence[Path]) -> str:
    """The outcome of an upload: the articles added (with what it cost), then each file
    left aside with its reason, then what the corpus now holds."""
    added, orphans = _articles_from(result.copied, assistant)
    report = result.report
    if added and report is not None:
        cost = (f"{_plural(report.embedded_chunks, 'passage')} "
                f"{_agreed(report.embedded_chunks, 'encodé')} en {_seconds(report.seconds)} s"
                + (", index reconstruit entièrement" if report.rebuilt else ""))
        head = f"{_plural(len(added), 'article')} {_agreed(len(added), 'ajouté')} ({cost})"
        titles = "".join(f"<li>{esc(a.title)}</li>" for a in added)
        parts = [f'<p class="qa-upload-done"><strong>{esc(head)}</strong></p>'
                 f'<ul class="qa-upload-added">{titles}</ul>']
    else:
        parts = ['<p class="qa-upload-none"><strong>Aucun article ajouté.</strong></p>']
    if report is not None and report.updated:
        parts.append(f"<p>{esc(_plural(len(report.updated), 'article'))} du dossier du corpus "
                     f"{_agreed(len(report.updated), 'mis')} à jour.</p>")
    if report is not None and report.removed:
        parts.append(f"<p>{esc(_plural(len(report.removed), 'article'))} "
                     f"{_agreed(len(report.removed), 'retiré')} (absents du dossier du corpus)."
                     "</p>")
    skipped = [_shown_reason(r, uploaded) for r in result.skipped]
    skipped += [f"{name} : {_not_indexed_reason(name, assistant)}" for name in orphans]
    if skipped:
        items = "".join(f"<li>{esc(reason)}</li>" for reason in skipped)
        parts.append(f'<p class="qa-upload-skipped-heading">{_plural(len(skipped), "fichier")} '
                     f"{_agreed(len(skipped), 'ignoré')} :</p>"
                     f'<ul class="qa-upload-skipped">{items}</ul>')
    parts.append(f'<p class="qa-upload-corpus">Corpus : {esc(corpus_summary(assistant))}.</p>')
    return _status("".join(parts))


def _status(body: str, kind: str = "") -> str:
    return f'<div class="{" ".join(filter(None, ("qa-upload-status", kind)))}" role="status">' \
           f"{body}</div>"


def corpus_list(assistant: Assistant, limit: int = LISTED_ARTICLES) -> str:
    """The titles of the indexed articles (with source and date), folded."""
    articles = list(assistant.index.articles.values())
    items = "".join(
        f"<li>{esc(a.title)}"
        + (f' <span class="qa-meta">{_meta_line(None, a.source, a.date)}</span>'
           if a.source or a.date else "")
        + "</li>"
        for a in articles[:limit])
    more = (f"<p>… et {_plural(len(articles) - limit, 'autre article')}.</p>"
            if len(articles) > limit else "")
    return (f'<details class="qa-corpus-list"><summary>Articles indexés ({len(articles)})'
            f"</summary><ol>{items}</ol>{more}</details>")


def add_articles(files: object, assistant: Assistant, progress: Progress | None = None) -> Upload:
    """Index uploaded files (paths in Gradio's temporary folder, under their own name).

    The engine copies them into the corpus folder and swaps the index in one
    assignment, so questions asked meanwhile are answered from the previous state. A
    file it cannot use is listed with its reason; a failure is a short French message
    (logged here with its traceback), never a stack trace in the page.
    """
    paths = _file_paths(files)
    if not paths:
        return Upload(_status(f"<p>{esc(NO_FILE_HINT)}</p>", "qa-upload-hint"),
                      _header_html(assistant), corpus_list(assistant), done=False)

    def steps(done: int, total: int) -> None:
        # Encoding is the long part of indexing: the bar follows it, batch by batch.
        progress(done / total, desc=f"Encodage des passages et des phrases : {done} / {total}")

    if progress is not None:
        progress(0, desc=f"Indexation de {_plural(len(paths), 'fichier')}…")
    started = time.perf_counter()
    try:
        result = assistant.add(paths, progress=False,
                               on_progress=steps if progress is not None else None)
    except QAError as exc:  # written for readers: says what happened and what to do
        log.warning("upload not indexed: %s", exc)
        message = _shown_reason(str(exc), paths)
    except Exception:
        log.exception("failed to index %s", [p.name for p in paths])
        message = UPLOAD_ERROR_MESSAGE
    else:
        log.info("upload of %d file(s) handled in %.1f s: %d copied, %d skipped", len(paths),
                 time.perf_counter() - started, len(result.copied), len(result.skipped))
        return Upload(format_upload(result, assistant, paths), _header_html(assistant),
                      corpus_list(assistant), done=True)
    # The files stay in the picker: the reader can try again without choosing them anew.
    return Upload(_status(f"<p>{esc(message)}</p>", "qa-upload-error"), _header_html(assistant),
                  corpus_list(assistant), done=False)


# --------------------------------------------------------------------------- page

_CSS = """
.qa-header h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
.qa-header p { margin: .1rem 0; color: var(--body-text-color-subdued); }
.qa-cite-ref { font-weight: 600; text-decoration: none; padding: 0 .1em; border-radius: 3px;
  color: var(--color-accent); cursor: pointer; white-space: nowrap; }
.qa-cite-ref:hover, .qa-cite-ref:focus { background: var(--color-accent-soft); }
.qa-notice { color: var(--body-text-color-subdued); font-style: italic; }
.qa-question { white-space: pre-wrap; overflow-wrap: anywhere; }
.qa-answer, .qa-question { overflow-wrap: anywhere; }
.qa-refusal ol { margin: .3rem 0 0 1.2rem; padding: 0; }
.qa-refusal .qa-title { font-style: italic; }
#qa-examples { flex-wrap: wrap; gap: .4rem; align-items: center; }
#qa-examples button { flex: 0 1 auto; min-width: 0; width: auto; }
.qa-examples-label { font-size: .95em; margin: .2rem 0 0; }
.qa-sources h2 { font-size: 1.15rem; margin: 0 0 .5rem; }
.qa-sources .qa-empty { color: var(--body-text-color-subdued); }
.qa-turn { margin-bottom: .6rem; }
.qa-turn > summary { cursor: pointer; font-weight: 600; margin-bottom: .4rem; }
.qa-context { font-size: .9em; color: var(--body-text-color-subdued); margin: .2rem 0 .5rem; }
.qa-card { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: .6rem .8rem; margin: 0 0 .6rem; background: var(--block-background-fill); }
.qa-card header { display: flex; gap: .6rem; align-items: flex-start; }
.qa-card h3 { font-size: 1rem; margin: 0; line-height: 1.3; }
.qa-meta { font-size: .85em; color: var(--body-text-color-subdued); margin: .15rem 0 0; }
.qa-badge { flex: none; display: inline-flex; align-items: center; justify-content: center;
  min-width: 1.6rem; height: 1.6rem; border-radius: 999px; font-weight: 700; font-size: .85em;
  background: var(--color-accent-soft); color: var(--color-accent); }
.qa-excerpt { margin: .5rem 0 .3rem; padding: 0 0 0 .7rem;
  border-left: 3px solid var(--border-color-accent); }
.qa-excerpt p, .qa-full-text p { margin: .3rem 0; }
.qa-mark { background: #fde68a; color: #1c1917; padding: 0 .1em; border-radius: 2px; }
.qa-mark.qa-flash { outline: 3px solid var(--color-accent); transition: outline-color .3s; }
.qa-full > summary { cursor: pointer; font-size: .9em; color: var(--color-accent); }
.qa-full-text { max-height: 22rem; overflow-y: auto; font-size: .92em; padding-right: .3rem; }
.qa-closest-heading { font-size: 1rem; }
.qa-upload-status p { margin: .2rem 0; }
.qa-upload-status ul, .qa-corpus-list ol { margin: .2rem 0 .4rem 1.2rem; padding: 0; }
.qa-upload-hint { color: var(--body-text-color-subdued); }
.qa-upload-error, .qa-upload-skipped { color: var(--error-text-color, #b91c1c); }
.qa-upload-corpus { color: var(--body-text-color-subdued); font-size: .92em; }
.qa-corpus-list > summary { cursor: pointer; font-weight: 600; }
.qa-corpus-list li { margin: .1rem 0; }
"""

# A click on `[n]` in the chat opens the answer's sources, scrolls to the cited
# sentence and flashes it. Registered once on the document: the chat re-renders its
# messages, so listeners on the links themselves would be lost.
_CITE_JS = """
if (!window.__qaCiteHandler) {
  window.__qaCiteHandler = function (event) {
    const link = event.target.closest && event.target.closest('a.qa-cite-ref, a[href^="#cite-"]');
    if (!link) return;
    const id = (link.getAttribute('href') || '').slice(1);
    const target = document.getElementById(id);
    if (!target) return;
    event.preventDefault();
    event.stopPropagation();
    for (let node = target.parentElement; node; node = node.parentElement) {
      if (node.tagName === 'DETAILS') node.open = true;
    }
    target.scrollIntoView({behavior: 'smooth', block: 'center'});
    target.classList.add('qa-flash');
    target.focus({preventScroll: true});
    setTimeout(() => target.classList.remove('qa-flash'), 2000);
  };
  document.addEventListener('click', window.__qaCiteHandler, true);
}
"""


def _gradio():
    """Gradio, imported on first use with its analytics off (no network at all)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio as gr

    return gr


def _header_html(assistant: Assistant) -> str:
    titles = " · ".join(esc(a.title) for a in list(assistant.index.articles.values())[:6])
    more = " …" if len(assistant.index.articles) > 6 else ""
    return (f"<style>{_CSS}</style>"
            f'<header class="qa-header"><h1>{esc(APP_TITLE)}</h1>'
            f'<p>Corpus chargé : <strong class="qa-summary">{esc(corpus_summary(assistant))}'
            "</strong>. "
            "Les réponses citent les articles phrase par phrase ; sans réponse dans les "
            "articles, l'assistant le dit.</p>"
            f'<p class="qa-titles">{titles}{more}</p></header>')


def _page_title(assistant: Assistant) -> str:
    return f"{APP_TITLE} — {corpus_summary(assistant)}"


# The tab's title names the corpus size: after an upload it follows the header.
_TITLE_JS = f"""() => {{
  const summary = document.querySelector('#qa-header .qa-summary');
  if (summary) document.title = {json.dumps(APP_TITLE + " — ")} + summary.textContent;
}}"""


def _upload_section(assistant: Assistant, header: gr.HTML) -> None:
    """« Ajouter des articles »: files, an « Indexer » button, the outcome, the titles."""
    gr = _gradio()
    with gr.Accordion("Ajouter des articles", open=False, elem_id="qa-upload"):
        files = gr.File(label=f"Fichiers d'articles ({', '.join(UPLOAD_FORMATS)})",
                        file_count="multiple", file_types=list(UPLOAD_FORMATS),
                        type="filepath", elem_id="qa-upload-files", height=140)
        index_button = gr.Button("Indexer", variant="primary", elem_id="qa-upload-index")
        status = gr.HTML(_status(f"<p>{esc(UPLOAD_HINT)}</p>", "qa-upload-hint"),
                         elem_id="qa-upload-status", js_on_load=None)
        listing = gr.HTML(corpus_list(assistant), elem_id="qa-corpus-list", js_on_load=None)

    # Gradio spots the tracker by its default value and gives each call a fresh one.
    tracker = gr.Progress()

    def upload(chosen, progress=tracker):
        done = add_articles(chosen, assistant, progress)
        # Emptied once handled, so that the next click does not send the same files again.
        return done.status, done.header, done.corpus, None if done.done else gr.skip()

    index_button.click(upload, files, [status, header, listing, files], api_name="add_articles",
                       concurrency_id="corpus", concurrency_limit=UPLOAD_CONCURRENCY,
                       show_progress="full", show_progress_on=[status]
                       ).then(None, js=_TITLE_JS, api_visibility="private", queue=False)


def create_app(assistant: Assistant) -> gr.Blocks:
    """The chat page over `assistant`, with its queue configured; launch it yourself."""
    gr = _gradio()
    examples = corpus_examples(assistant)

    def ask(message, history, asked, sections):
        reply = respond(message, history, asked, sections, assistant)
        return "", reply.history, reply.asked, reply.sections, reply.panel

    def ask_example(question: str):
        def run(history, asked, sections):
            return ask(question, history, asked, sections)
        return run

    def reset():
        return "", [], [], [], render_panel([])

    with gr.Blocks(title=_page_title(assistant), analytics_enabled=False) as demo:
        header = gr.HTML(_header_html(assistant), elem_id="qa-header", js_on_load=None)
        asked = gr.State([])
        sections = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=360):
                chatbot = gr.Chatbot(
                    label="Conversation", elem_id="qa-chat", height=520, layout="bubble",
                    latex_delimiters=[], buttons=[], feedback_options=None,
                    group_consecutive_messages=False,
                    placeholder="Posez une question sur les articles : la réponse cite ses "
                                "sources, numérotées [1], [2]…",
                )
                with gr.Row():
                    textbox = gr.Textbox(placeholder="Votre question…", show_label=False,
                                         scale=5, lines=1, max_lines=4, elem_id="qa-input",
                                         autofocus=True)
                    send = gr.Button("Envoyer", variant="primary", scale=1, min_width=90,
                                     elem_id="qa-send")
                gr.HTML('<p class="qa-examples-label">Exemples de questions sur ces articles :</p>',
                        js_on_load=None, visible=bool(examples))
                with gr.Row(elem_id="qa-examples", visible=bool(examples)):
                    example_buttons = [gr.Button(q, size="sm", variant="secondary", scale=0)
                                       for q in examples]
                clear = gr.Button("Nouvelle conversation", size="sm", variant="secondary",
                                  elem_id="qa-clear")
                _upload_section(assistant, header)
            with gr.Column(scale=2, min_width=320):
                sources = gr.HTML(render_panel([]), elem_id="qa-sources", max_height=640,
                                  js_on_load=_CITE_JS, padding=True)
        outputs = [textbox, chatbot, asked, sections, sources]
        gr.on([textbox.submit, send.click], ask, [textbox, chatbot, asked, sections], outputs,
              api_name="ask", concurrency_id="engine", show_progress="minimal")
        for question, button in zip(examples, example_buttons, strict=True):
            button.click(ask_example(question), [chatbot, asked, sections], outputs,
                         api_visibility="private", concurrency_id="engine",
                         show_progress="minimal")
        clear.click(reset, None, outputs, api_visibility="private", queue=False)
        # The chat's own bin icon empties the chat only: the session must follow.
        chatbot.clear(reset, None, outputs, api_visibility="private", queue=False)
    demo.queue(default_concurrency_limit=ANSWER_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return demo


# --------------------------------------------------------------------------- commands

@click.command("serve")
@click.option("--host", help="Adresse d'écoute (QA_HOST, défaut 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (QA_PORT, défaut 7860).")
def serve_command(host: str | None, port: int | None) -> None:
    """Open the web chat: build or refresh the index, then serve the page."""
    settings = Settings.from_env(host=host, port=port)
    click.echo("Préparation de l'index et du modèle…", err=True)
    assistant = Assistant.load(settings, progress=True)
    click.echo(f"Corpus chargé : {corpus_summary(assistant)}. "
               f"Ouvrez http://{settings.host}:{settings.port}/ dans un navigateur.", err=True)
    create_app(assistant).launch(server_name=settings.host, server_port=settings.port,
                                 show_error=False, footer_links=[], quiet=True,
                                 max_file_size=MAX_UPLOAD_SIZE)

