"""The HTML reader: a saved web page (`.html`, `.htm`) → its main article, through
trafilatura, with the title, date, address and site name the page declares.

Owns the decoding of legacy page encodings and the rebuilding of paragraphs from
trafilatura's XML; not the fetching of pages, which is the user's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from qa.corpus.source import (
    FIX_HINT,
    CorpusFileError,
    Located,
    SourceFile,
    make_article,
    require_text,
)
from qa.text import fold, nfc

__all__ = ["read_html"]

# Site menus and footers are never article text; trafilatura's fallback extractors
# would otherwise return them for a page that has no article.
_HTML_BOILERPLATE = ["//nav", "//footer"]
# trafilatura's text output keeps the newlines of the HTML source inside a paragraph,
# so paragraphs are rebuilt from its XML tree.
_HTML_BLOCKS = frozenset({"p", "head", "quote", "list", "item", "table", "row", "code", "div"})
_ASCII_SPACES = re.compile(r"[ \t\n\r\f\v]+")
_DECLARED_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
_NO_HTML_TEXT = (
    "aucun texte principal trouvé dans cette page HTML — enregistrez la page de l'article "
    "elle-même (pas un menu ni une page d'accueil) ou copiez son texte dans un fichier .txt"
)


def _decode_html(data: bytes) -> str:
    """The page as text: UTF-8, else the charset its <meta> declares, else Windows-1252."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    declared = _DECLARED_CHARSET.search(data[:4096])
    if declared:
        try:
            return data.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    # Legacy French pages are Windows-1252; latin-1 decodes its few undefined bytes.
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _html_paragraphs(body: Any) -> list[str]:
    """The paragraphs of trafilatura's XML body: one per block, list item, table row or <lb/>.

    Runs of ASCII whitespace collapse to one space; no-break spaces stay, as French
    typography puts them before « : ; ! ? ».
    """
    if body is None:
        return []
    parts: list[str] = []

    def walk(node: Any) -> None:
        parts.append(_ASCII_SPACES.sub(" ", node.text or ""))
        for child in node:
            block = child.tag in _HTML_BLOCKS
            if block or child.tag == "lb":
                parts.append("\n")
            if child.tag == "item":
                parts.append("- ")
            elif child.tag == "cell" and child.getprevious() is not None:
                parts.append(" | ")
            if child.tag != "lb":
                walk(child)
            if block:
                parts.append("\n")
            parts.append(_ASCII_SPACES.sub(" ", child.tail or ""))

    walk(body)
    lines = (line.strip(" ") for line in "".join(parts).split("\n"))
    return [line for line in lines if line not in ("", "-")]


def _trafilatura() -> Any:
    # Imported on first use: most corpora hold no HTML, and the import is slow.
    try:
        import trafilatura
    except ImportError as exc:
        raise CorpusFileError(
            f"lecture des pages HTML impossible ({exc}) — installez-la avec "
            "`pip install trafilatura lxml_html_clean`"
        ) from None
    return trafilatura


def read_html(source: SourceFile, report: Callable[[CorpusFileError], None]) -> list[Located]:
    """A saved web page: its main text, title, date, address and site name."""
    html = _decode_html(source.data)
    require_text(html)
    extract = _trafilatura().bare_extraction
    try:
        doc = extract(
            html,
            with_metadata=True,
            include_comments=False,
            favor_precision=True,
            prune_xpath=_HTML_BOILERPLATE,
            # Only dates the page states in its metadata, never guesses from its text.
            date_extraction_params={"extensive_search": False, "original_date": True},
        )
    except Exception as exc:  # a parser bug on odd markup must not stop the whole corpus
        raise CorpusFileError(f"page HTML illisible ({exc}) — {FIX_HINT} le fichier") from None
    if doc is None:
        raise CorpusFileError(_NO_HTML_TEXT)
    title = nfc(doc.title or "").strip()
    paragraphs = [nfc(p) for p in _html_paragraphs(doc.body)]
    # The page's <h1> usually repeats the title at the top of the main text.
    if paragraphs and title and fold(paragraphs[0]) == fold(title):
        paragraphs = paragraphs[1:]
    if not paragraphs:
        raise CorpusFileError(_NO_HTML_TEXT)
    meta = {"date": doc.date, "url": doc.url, "source": doc.sitename}
    article = make_article(
        source, id=source.stem, title=title or source.stem, text="\n\n".join(paragraphs), meta=meta
    )
    return [(article, None)]
