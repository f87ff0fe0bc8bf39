"""The PDF reader: a `.pdf` article's text layer, through pypdf, unwrapped into
paragraphs, with words cut at line ends rejoined and the title and date taken from
the document's metadata. Scanned PDFs without a text layer are refused, not OCRed.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from qa.corpus.plaintext import title_line
from qa.corpus.source import CorpusFileError, Located, SourceFile, clean_body, make_article
from qa.text import fold, nfc, wrap_width

__all__ = ["read_pdf"]

# Typographic ligatures that PDF fonts emit as single characters; NFC keeps them.
_LIGATURES = str.maketrans(
    {chr(code): unicodedata.normalize("NFKC", chr(code)) for code in range(0xFB00, 0xFB07)}
)
# The cut word, then the rest of it with its punctuation, and the line end when
# nothing else is left on that line.
_LINE_END_HYPHEN = re.compile(r"([^\W\d_]+)[-\u00ad][ \t]*\n[ \t]*([^\W\d_]+)(\S*)[ \t]*\n?")
# Every "word-word" pair, overlapping: "c'est-à-dire" gives "est-à" and "à-dire".
_HYPHENATED = re.compile(r"(?<![^\W\d_])(?=([^\W\d_]+-[^\W\d_]+))")
# Titles that PDF producers fill in by themselves, which say nothing about the article.
_PLACEHOLDER_TITLE = re.compile(
    r"^(?:untitled|sans titre|document\d*|microsoft (?:word|powerpoint)\b.*|.*\.\w{2,4})$",
    re.IGNORECASE,
)
_NULL_HANDLER = logging.NullHandler()
_NO_PDF_TEXT = "PDF sans texte extractible (scan ?) : passez-le d'abord dans un OCR"


def _dehyphenate(text: str) -> str:
    """Rejoins words cut at a line end: "exem-\\nple" → "exemple\\n".

    A hyphen before a capital ("Jean-\\nMarc") is kept, and so is one of a word the
    document also spells hyphenated elsewhere ("peut-être").
    """
    hyphenated = {fold(word) for word in _HYPHENATED.findall(text)}

    def join(match: re.Match[str]) -> str:
        head, tail, punctuation = match.groups()
        keep = not tail[0].islower() or fold(f"{head}-{tail}") in hyphenated
        return f"{head}{'-' if keep else ''}{tail}{punctuation}\n"

    return _LINE_END_HYPHEN.sub(join, text)


def _pdf_reader(data: bytes) -> tuple[Any, str]:
    import pypdf  # imported on first use, like trafilatura

    # pypdf logs every repair it attempts; without a handler Python would print them
    # to stderr next to the problem already reported. Configured logging still sees them.
    logging.getLogger("pypdf").addHandler(_NULL_HANDLER)

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except pypdf.errors.FileNotDecryptedError:
        raise CorpusFileError(
            "PDF protégé par un mot de passe — enregistrez-en une copie sans protection"
        ) from None
    except pypdf.errors.DependencyError as exc:
        raise CorpusFileError(
            f"PDF chiffré illisible ({exc}) — installez `cryptography` ou enregistrez-en une "
            "copie sans protection"
        ) from None
    except Exception as exc:  # pypdf raises many kinds of errors on damaged files
        raise CorpusFileError(
            f"PDF endommagé ou illisible ({exc or type(exc).__name__}) — réexportez-le depuis "
            "son logiciel d'origine ou supprimez-le du corpus"
        ) from None
    return reader, "\n".join(pages)


def _pdf_meta(reader: Any) -> tuple[str, str]:
    """The /Title when meaningful, and the /CreationDate as an ISO date; "" when absent."""
    try:
        info = reader.metadata
        title = nfc(str(info.title or "")).strip() if info is not None else ""
        created = info.creation_date if info is not None else None
    except Exception:  # a malformed date or title is only missing metadata
        return "", ""
    if _PLACEHOLDER_TITLE.match(title):
        title = ""
    return title, created.date().isoformat() if created else ""


def _pdf_title_line(text: str) -> str:
    """The first line of a PDF's text when it stands apart as a title, else ""."""
    title = title_line(text)
    width = wrap_width(text)
    # Proportional fonts make line lengths uneven, so a body line can look short: only a
    # clearly short line that does not run on into the next one is a title.
    if width is not None and len(title) > 0.75 * width:
        return ""
    return "" if title.endswith((",", ";", "-", "\u00ad")) else title


def read_pdf(source: SourceFile, report: Callable[[CorpusFileError], None]) -> list[Located]:
    """A PDF article: its text unwrapped into paragraphs, title and date from its metadata."""
    reader, raw = _pdf_reader(source.data)
    text = nfc(raw).translate(_LIGATURES).replace("\r\n", "\n").replace("\r", "\n")
    text = _dehyphenate("\n".join(line.rstrip() for line in text.split("\n"))).strip()
    if not text:
        raise CorpusFileError(_NO_PDF_TEXT)
    title, date = _pdf_meta(reader)
    title = title or _pdf_title_line(text)
    first, _, rest = text.partition("\n")
    # The first line is the title line itself, or repeats the /Title.
    if title and fold(first) == fold(title):
        text = rest
    body = clean_body(text)
    if not body:
        raise CorpusFileError(_NO_PDF_TEXT)
    article = make_article(
        source, id=source.stem, title=title or source.stem, text=body, meta={"date": date}
    )
    return [(article, None)]
