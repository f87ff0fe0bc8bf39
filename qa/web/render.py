"""The page's HTML: the chat's messages, the sources panel and the header.

Owns the rendering of the reader's question, of answers with their `[n]` links, of
refusals and notices, of the sources panel with its citation and passage cards, of an
article's text with the cited sentences highlighted, and of the page header. The markup
lives in `templates/*.html`; `render_template()` gives the other modules of `qa.web` the
same environment.

Everything shown comes from the reader or from the articles. The templates autoescape,
and every value they print goes through `inert()` (the environment's `finalize`), which
also encodes the template syntax of Gradio's HTML component: nothing a reader types or
an article holds can become markup or script. Only `Markup` made here on purpose passes
as it is: fragments these templates rendered, and the page's own stylesheet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files
from itertools import islice
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from qa.answering.assistant import Assistant
from qa.schema import Answer, Article, Citation, Passage, ShortAnswer
from qa.text import split_sentences

APP_TITLE = "Questions sur l'actualité"
CLOSEST_HEADING = "Passages les plus proches"
# Closest passages listed under a refusal: enough to judge, few enough to read.
SHOWN_PASSAGES = 3
# Titles named in the header; the list under « Ajouter des articles » has them all.
HEADER_TITLES = 6

_MARKER = re.compile(r"\[(\d+)\]")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
# Gradio's HTML component fills its value into a template of its own (`${value}`, then
# Handlebars): an article or a reader may write « {{x}} » or « ${x} ».
_TEMPLATE_SYNTAX = str.maketrans({"{": "&#123;", "}": "&#125;", "$": "&#36;"})


# --------------------------------------------------------------------------- text

def inert(value: object) -> Markup:
    """`value` as text made inert inside HTML, attributes included, and inside the
    HTML component's own templates. `Markup` is returned as it is."""
    if isinstance(value, Markup):
        return value
    return Markup(str(escape(value)).translate(_TEMPLATE_SYNTAX))


def french_date(date: str) -> str:
    """« 2026-01-02 » → « 2 janvier 2026 »; anything else is returned as it is."""
    match = _ISO_DATE.match(date or "")
    if not match:
        return date or ""
    year, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12:
        return date
    return f"{'1er' if day == 1 else day} {_MONTHS[month - 1]} {year}"


def plural(count: int, word: str) -> str:
    """« 1 article », « 2 articles »."""
    return f"{count} {word}{'s' if count > 1 else ''}"


def agreed(count: int, word: str) -> str:
    """« ajouté » or « ajoutés », after `count`."""
    return f"{word}{'s' if count > 1 else ''}"


def decimal(number: float) -> str:
    """« 1,5 »: one decimal, with a French comma."""
    return f"{number:.1f}".replace(".", ",")


def short(text: str, limit: int) -> str:
    """`text` on one line, cut at a word before `limit` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def corpus_summary(assistant: Assistant) -> str:
    """« 3 articles, 7 passages »: what the loaded index holds."""
    counts = assistant.index.manifest.counts
    return f"{plural(counts.articles, 'article')}, {plural(counts.chunks, 'passage')}"


# --------------------------------------------------------------------------- templates

@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("qa.web"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      finalize=inert)
    env.filters.update(french_date=french_date, plural=plural, agreed=agreed, decimal=decimal,
                       short=short)
    return env


def render_template(name: str, **context: Any) -> str:
    """The template `templates/<name>` filled with `context`."""
    return _environment().get_template(name).render(**context)


@cache
def asset(name: str) -> str:
    """A file of `static/`, as text."""
    return files("qa.web").joinpath("static", name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- highlighting

@dataclass(frozen=True)
class Mark:
    """A span of an article to highlight; `anchor` becomes the element's id; `exact`
    marks the short answer's own words inside a cited sentence."""

    start: int
    end: int
    n: int
    anchor: str = ""
    exact: bool = False


@dataclass(frozen=True)
class Segment:
    """A piece of text to show: plain (`n` None), or what citation `n` points to (a
    highlighted span, or the `[n]` link of an answer), with `anchor` as its id/target;
    `exact` for the short answer's words."""

    text: str
    n: int | None = None
    anchor: str = ""
    exact: bool = False


Paragraph = list[Segment]


def paragraphs(text: str, marks: Iterable[Mark] = (), offset: int = 0) -> list[Paragraph]:
    """`text` (which starts at `offset` in its article) as paragraphs of segments, each
    mark inside it a highlighted segment. Overlapping marks keep the first one."""
    spans = sorted((m for m in marks if m.end > offset and m.start < offset + len(text)),
                   key=lambda m: (m.start, m.n))
    pieces, at = [], 0
    for m in spans:
        start, end = max(m.start - offset, at), min(m.end - offset, len(text))
        if start >= end:
            continue
        pieces += [Segment(text[at:start]), Segment(text[start:end], m.n, m.anchor, m.exact)]
        at = end
    pieces.append(Segment(text[at:]))
    # Sentences never cross a paragraph break, so marks do not either; were one to, its
    # two halves stay highlighted and only the first keeps the anchor (ids are unique).
    result: list[Paragraph] = [[]]
    for piece in pieces:
        for i, part in enumerate(_PARAGRAPH_BREAK.split(piece.text)):
            if i:
                result.append([])
            if part:
                result[-1].append(Segment(part, piece.n, "" if i else piece.anchor,
                                          piece.exact))
    return [p for p in result if any(s.n is not None or s.text.strip() for s in p)]


def sentence_marks(c: Citation, short: ShortAnswer | None, anchor: str = "") -> list[Mark]:
    """The marks of a cited sentence: one, or three when the short answer stands in it
    (before, the exact words, after), the anchor on the first that is not empty."""
    if short is None or short.article_id != c.article_id or not (
            c.start <= short.start < short.end <= c.end):
        return [Mark(c.start, c.end, c.n, anchor)]
    parts = [(c.start, short.start, False), (short.start, short.end, True),
             (short.end, c.end, False)]
    marks = [Mark(start, end, c.n, exact=exact) for start, end, exact in parts if start < end]
    return [replace(marks[0], anchor=anchor), *marks[1:]]


def context_span(article: Article, start: int, end: int) -> tuple[int, int]:
    """The cited span with the sentence before and the sentence after it."""
    spans = split_sentences(article.text)
    before = [s for s, e in spans if e <= start]
    after = [e for s, e in spans if s >= end]
    return (before[-1] if before else start), (after[0] if after else end)


# --------------------------------------------------------------------------- chat messages

def cite_anchor(turn: int, n: int) -> str:
    """The id of the highlighted sentence that `[n]` of answer number `turn` points to."""
    return f"cite-{turn}-{n}"


def format_question(question: str) -> str:
    """The reader's message as shown in the chat: literal text, never markup."""
    return render_template("question.html", text=question)


def format_notice(text: str) -> str:
    """A short message of the app itself (hint, error) for the chat."""
    return render_template("notice.html", text=text)


def format_answer(answer: Answer, turn: int) -> str:
    """The answer text for the chat, each `[n]` a link to its sentence in the sources;
    a short answer first, set apart, then the sentence that holds it."""
    known = {c.n for c in answer.citations}
    short, text = answer.short_answer, answer.text
    if short is not None and text.startswith(short.text):
        text = text[len(short.text):].lstrip(" —")
    else:
        short = None
    pieces, at = [], 0
    for match in _MARKER.finditer(text):
        n = int(match.group(1))
        if n in known:  # a marker without its citation stays plain text
            pieces += [Segment(text[at:match.start()]),
                       Segment(match.group(), n, cite_anchor(turn, n))]
            at = match.end()
    pieces.append(Segment(text[at:]))
    return render_template("answer.html", pieces=pieces,
                           short=short.text if short else None)


def format_refusal(answer: Answer) -> str:
    """A plain « not found », then the closest passages: never an invented answer."""
    return render_template("refusal.html", text=answer.text, heading=CLOSEST_HEADING,
                           passages=answer.passages[:SHOWN_PASSAGES])


# --------------------------------------------------------------------------- sources panel

@dataclass(frozen=True)
class _Card:
    """One card of the sources panel, as the template shows it."""

    badge: int
    title: str
    excerpt: list[Paragraph]
    source: str = ""
    date: str = ""
    url: str = ""  # the original article, linked when it is on the web
    id: str = ""
    lead: bool = False  # the article goes on before the excerpt
    trail: bool = False  # and after it
    full: list[Paragraph] | None = None  # the whole article, shown on demand


def _web_url(article: Article) -> str:
    return article.url if article.url.startswith(("https://", "http://")) else ""


def _citation_card(c: Citation, article: Article | None, turn: int,
                   article_marks: Sequence[Mark], short: ShortAnswer | None) -> _Card:
    own = sentence_marks(c, short, cite_anchor(turn, c.n))
    common = {"badge": c.n, "title": c.title, "source": c.source, "date": c.date,
              "id": f"source-{turn}-{c.n}"}
    if article is None:  # the index always has it; the quote alone still says enough
        return _Card(**common, excerpt=paragraphs(c.quote, [
            replace(m, start=m.start - c.start, end=m.end - c.start) for m in own]))
    start, end = context_span(article, c.start, c.end)
    return _Card(**common, url=_web_url(article),
                 excerpt=paragraphs(article.text[start:end], own, offset=start),
                 lead=start > 0, trail=end < len(article.text.rstrip()),
                 full=paragraphs(article.text, article_marks))


def _passage_card(p: Passage, article: Article | None, rank: int) -> _Card:
    if article is None:
        return _Card(badge=rank, title=p.title, excerpt=paragraphs(p.text))
    return _Card(badge=rank, title=p.title, excerpt=paragraphs(p.text), source=article.source,
                 date=article.date, url=_web_url(article), full=paragraphs(article.text))


def format_sources(answer: Answer, articles: dict[str, Article], turn: int) -> str:
    """The sources of one answer: a card per citation (title, source, date, the cited
    sentence highlighted in its context, the whole article on demand), or under a
    refusal the closest passages."""
    if not answer.answered:
        cards = [_passage_card(p, articles.get(p.article_id), rank)
                 for rank, p in enumerate(answer.passages[:SHOWN_PASSAGES], start=1)]
    else:
        marks: dict[str, list[Mark]] = {}
        for c in answer.citations:
            marks.setdefault(c.article_id, []).extend(sentence_marks(c, answer.short_answer))
        cards = [_citation_card(c, articles.get(c.article_id), turn, marks[c.article_id],
                                answer.short_answer)
                 for c in answer.citations]
    return render_template("sources.html", cards=cards, refused=not answer.answered,
                           heading=CLOSEST_HEADING)


def render_panel(sections: Sequence[dict[str, Any]]) -> str:
    """The whole sources panel from the session's sections (see `qa.web.chat.Section`):
    the latest exchange open, the earlier ones folded."""
    # A section's body is HTML that `format_sources` rendered, kept in the session.
    shown = [{**s, "body": Markup(s["body"])} for s in reversed(sections)]
    return render_template("panel.html", sections=shown)


def header(assistant: Assistant) -> str:
    """The page's header: its title, what the corpus holds, the first titles."""
    # Only the first ones: an index in Qdrant reads them page by page from the engine.
    titles = [a.title for a in islice(assistant.index.articles.values(), HEADER_TITLES + 1)]
    # The stylesheet is the package's own file, never text from outside.
    return render_template("header.html", css=Markup(asset("style.css")), title=APP_TITLE,
                           summary=corpus_summary(assistant), titles=titles[:HEADER_TITLES],
                           more=len(titles) > HEADER_TITLES)
