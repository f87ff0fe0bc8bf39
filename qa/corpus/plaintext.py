"""The plain-text reader: one article per `.txt` file, and the rule that tells a title
line from the first line of the body, which the PDF reader reuses."""

from __future__ import annotations

from collections.abc import Callable

from qa.corpus.source import (
    CorpusFileError,
    Located,
    SourceFile,
    clean_body,
    decode_text,
    make_article,
    require_text,
)
from qa.text import wrap_width

__all__ = ["read_text", "title_line"]

_MAX_TITLE_CHARS = 200


def title_line(text: str) -> str:
    """The first line of `text` when it is a short title set apart from the body, else ""."""
    first, _, rest = text.partition("\n")
    if not rest.strip() or len(first.strip()) > _MAX_TITLE_CHARS:
        return ""
    # In hard-wrapped text the first line is a title only if it was cut on purpose:
    # followed by a blank line, or the next word would have fitted on it.
    width = wrap_width(text)
    next_line = rest.split("\n", 1)[0]
    if (
        width is None
        or not next_line.strip()
        or len(first.rstrip()) + 1 + len(next_line.split()[0]) <= width
    ):
        return first.strip()
    return ""


def read_text(source: SourceFile, report: Callable[[CorpusFileError], None]) -> list[Located]:
    """A plain-text article; a short first line set apart from the body is its title."""
    text = decode_text(source.data).strip("\n")
    require_text(text)
    title = title_line(text)
    body = clean_body(text.partition("\n")[2]) if title else clean_body(text)
    article = make_article(source, id=source.stem, title=title or source.stem, text=body, meta={})
    return [(article, None)]
