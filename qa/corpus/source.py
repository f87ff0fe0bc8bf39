"""What every reader shares: the file it is given, the error it raises, and the making
of an `Article` from what it found.

Owns `SourceFile`, `CorpusFileError`, the reader contract (`Reader`, `Located`), the
UTF-8 decoding of text formats, `slugify`, and the cleaning of bodies and metadata
into an `Article`. Does not own any one format, nor the scan of the corpus folder.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import CorpusError
from qa.schema import Article
from qa.text import fold, nfc, unwrap

__all__ = [
    "FIX_HINT",
    "CorpusFileError",
    "Located",
    "Reader",
    "SourceFile",
    "clean_body",
    "decode_text",
    "make_article",
    "meta_value",
    "require_text",
    "slugify",
]

FIX_HINT = "corrigez ou supprimez"
_META_KEYS = ("source", "date", "tag", "language", "url")


class CorpusFileError(CorpusError):
    """One file (or one line of it, when `line` is set) cannot be read."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class SourceFile:
    """What a reader gets: the raw bytes and how to name the file."""

    path: Path
    display: str  # Article.path and problem location, e.g. "corpus/article.md"
    data: bytes

    @property
    def stem(self) -> str:
        return self.path.stem


# A reader returns the articles of one file, each with the line it starts on (None for
# a one-article file); `report` receives the errors of single lines so that the other
# lines still load.
Located = tuple[Article, int | None]
Reader = Callable[[SourceFile, Callable[[CorpusFileError], None]], list[Located]]


def slugify(value: str) -> str:
    """A slug-safe id: lowercase ascii letters, digits, `-` and `_`.

    "Grok Deepfakes — Enquête" → "grok-deepfakes-enquete"
    """
    folded = fold(value)
    return re.sub(r"[^a-z0-9_]+", "-", folded).strip("-")


def decode_text(data: bytes) -> str:
    """UTF-8 text of a file, newlines normalised, BOM dropped; `CorpusFileError` otherwise."""
    if b"\x00" in data:
        raise CorpusFileError(
            "fichier binaire (octets NUL) — un fichier .md, .txt ou .jsonl doit être du texte "
            "UTF-8 ; enregistrez-le dans le bon format ou supprimez-le du corpus"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CorpusFileError(
            f"le fichier n'est pas en UTF-8 (octet invalide 0x{data[exc.start]:02x} "
            f"à la position {exc.start}) — réenregistrez-le en UTF-8, par exemple avec "
            "`iconv -f latin1 -t utf-8`",
            line,
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def require_text(text: str) -> None:
    """Refuse a file with nothing but whitespace in it."""
    if not text.strip():
        raise CorpusFileError(
            "fichier vide — ajoutez le texte de l'article ou supprimez le fichier"
        )


def clean_body(text: str) -> str:
    """An article's text in NFC, hard-wrapped lines joined into paragraphs."""
    return unwrap(nfc(text)).strip()


def meta_value(value: Any) -> str:
    """A metadata value as text: dates in ISO form, "" for a missing one."""
    if value is None:
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return nfc(str(value)).strip()


def _first_words(text: str, limit: int = 80) -> str:
    words = text.split()
    title = ""
    for word in words:
        if title and len(title) + 1 + len(word) > limit:
            return title + " …"
        title = f"{title} {word}".strip()
    return title


def make_article(
    source: SourceFile, *, id: str, title: str, text: str, meta: dict[str, Any]
) -> Article:
    """The `Article` of `source`: `id` slugified (the file name when it slugifies to
    nothing), the start of `text` when `title` is empty, and the known `meta` keys."""
    article_id = slugify(id) or slugify(source.stem) or "article"
    return Article(
        id=article_id,
        title=meta_value(title) or _first_words(text),
        text=text,
        path=source.display,
        **{key: value for key in _META_KEYS if (value := meta_value(meta.get(key)))},
    )
