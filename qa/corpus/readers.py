"""Reading the corpus folder into `Article`s, and reporting every file it cannot use.

One reader per file format lives in `READERS`; a reader turns the bytes of one file
into articles, raises `CorpusFileError` when the whole file is unusable and reports
the bad lines of a multi-article file without giving up on the others. `load_corpus`
walks the folder, skips and reports what it cannot read, and refuses only a corpus
with no article at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from qa.errors import CorpusError
from qa.schema import Article
from qa.text import fold, nfc, unwrap, wrap_width

__all__ = [
    "READERS",
    "CorpusFileError",
    "CorpusLoad",
    "CorpusProblem",
    "Located",
    "Reader",
    "SourceFile",
    "decode_text",
    "load_corpus",
    "read_articles",
    "read_html",
    "read_jsonl",
    "read_markdown",
    "read_pdf",
    "read_text",
    "slugify",
]

_FIX_HINT = "corrigez ou supprimez"
_META_KEYS = ("source", "date", "tag", "language", "url")
_MAX_TITLE_CHARS = 200


class CorpusFileError(CorpusError):
    """One file (or one line of it, when `line` is set) cannot be read."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class CorpusProblem:
    """A file or line of the corpus that was skipped, and why."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class CorpusLoad:
    """The articles of a corpus folder, the problems met, and a hash of every file seen.

    `file_hashes` maps each file's path relative to the corpus folder (POSIX style)
    to the sha256 of its bytes, so that a change in any file can be detected.
    """

    articles: tuple[Article, ...]
    problems: tuple[CorpusProblem, ...]
    file_hashes: dict[str, str]


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


# --------------------------------------------------------------------------- helpers


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


def _clean_body(text: str) -> str:
    return unwrap(nfc(text)).strip()


def _meta_value(value: Any) -> str:
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


def _article(
    source: SourceFile, *, id: str, title: str, text: str, meta: dict[str, Any]
) -> Article:
    article_id = slugify(id) or slugify(source.stem) or "article"
    return Article(
        id=article_id,
        title=_meta_value(title) or _first_words(text),
        text=text,
        path=source.display,
        **{key: value for key in _META_KEYS if (value := _meta_value(meta.get(key)))},
    )


def _require_text(text: str) -> None:
    if not text.strip():
        raise CorpusFileError(
            "fichier vide — ajoutez le texte de l'article ou supprimez le fichier"
        )


# --------------------------------------------------------------------------- readers

_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_HEADING = re.compile(r"\A\s*#[ \t]+(.+?)[ \t#]*(?:\n|\Z)")


def read_markdown(source: SourceFile, report: Callable[[CorpusFileError], None]) -> list[Located]:
    """A Markdown article, with optional YAML front matter and `# Title` heading."""
    text = decode_text(source.data)
    _require_text(text)
    meta: dict[str, Any] = {}
    body = text
    body_line = 1
    if text.startswith("---\n") or text.rstrip() == "---":
        end = _FRONT_MATTER_END.search(text, 4)
        if end is None:
            raise CorpusFileError(
                "en-tête YAML non fermé — ajoutez une ligne `---` après les métadonnées", 1
            )
        try:
            loaded = yaml.safe_load(text[4 : end.start()])
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 2 if mark is not None else 1
            reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise CorpusFileError(
                f"en-tête YAML invalide ({reason}) — corrigez la syntaxe `clé: valeur`", line
            ) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise CorpusFileError(
                "l'en-tête YAML doit être une liste de `clé: valeur` (id, title, source, "
                "date, tag, language, url)",
                2,
            )
        meta = {str(key).lower(): value for key, value in loaded.items()}
        body = text[end.end() :]
        body_line = text[: end.end() + 1].count("\n") + 1
    title = _meta_value(meta.get("title"))
    heading = _HEADING.match(body)
    # The heading is the title when the front matter has none; a heading that repeats
    # the front-matter title would only duplicate it in the text.
    if heading and (not title or fold(heading.group(1)) == fold(title)):
        title = title or nfc(heading.group(1).strip())
        body = body[heading.end() :]
    body = _clean_body(body)
    if not body:
        raise CorpusFileError(
            "aucun texte d'article après l'en-tête — ajoutez le texte sous l'en-tête ou "
            "supprimez le fichier",
            body_line,
        )
    article = _article(
        source,
        id=_meta_value(meta.get("id")) or source.stem,
        title=title or source.stem,
        text=body,
        meta=meta,
    )
    return [(article, None)]


def _title_line(text: str) -> str:
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
    _require_text(text)
    title = _title_line(text)
    body = _clean_body(text.partition("\n")[2]) if title else _clean_body(text)
    article = _article(source, id=source.stem, title=title or source.stem, text=body, meta={})
    return [(article, None)]


def read_jsonl(source: SourceFile, report: Callable[[CorpusFileError], None]) -> list[Located]:
    """One article per line: {"id", "title", "text", "url", "date", "source", "tag", "language"}."""
    text = decode_text(source.data)
    _require_text(text)
    articles: list[Located] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            report(
                CorpusFileError(
                    f"ligne JSON invalide ({exc.msg}) — {_FIX_HINT} cette ligne", number
                )
            )
            continue
        if not isinstance(obj, dict):
            report(
                CorpusFileError(
                    f"la ligne n'est pas un objet JSON (reçu : {type(obj).__name__}) — "
                    'attendu {"id": …, "title": …, "text": …}',
                    number,
                )
            )
            continue
        body = obj.get("text")
        body = _clean_body(body) if isinstance(body, str) else ""
        if not body:
            report(
                CorpusFileError(
                    'champ "text" absent ou vide — ajoutez le texte de l\'article ou '
                    f"{_FIX_HINT} cette ligne",
                    number,
                )
            )
            continue
        raw_id = _meta_value(obj.get("id"))
        article = _article(
            source,
            id=raw_id if slugify(raw_id) else f"{source.stem}-{number}",
            title=_meta_value(obj.get("title")),
            text=body,
            meta=obj,
        )
        articles.append((article, number))
    return articles


# --------------------------------------------------------------------------- HTML

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
    _require_text(html)
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
        raise CorpusFileError(f"page HTML illisible ({exc}) — {_FIX_HINT} le fichier") from None
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
    article = _article(
        source, id=source.stem, title=title or source.stem, text="\n\n".join(paragraphs), meta=meta
    )
    return [(article, None)]


# --------------------------------------------------------------------------- PDF

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
    title = _title_line(text)
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
    body = _clean_body(text)
    if not body:
        raise CorpusFileError(_NO_PDF_TEXT)
    article = _article(
        source, id=source.stem, title=title or source.stem, text=body, meta={"date": date}
    )
    return [(article, None)]


READERS: dict[str, Reader] = {
    ".md": read_markdown,
    ".txt": read_text,
    ".jsonl": read_jsonl,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
}


# --------------------------------------------------------------------------- loading


def _display_path(path: Path, root: Path) -> str:
    try:
        return path.absolute().relative_to(root.absolute().parent).as_posix()
    except ValueError:
        return path.as_posix()


def _accepted_formats() -> str:
    # In READERS order, which groups the formats by kind: text, then web page, then PDF.
    return ", ".join(READERS)


def _read(
    path: Path, root: Path, data: bytes | None = None
) -> tuple[list[Located], list[CorpusFileError]]:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        kind = path.suffix.lower() or "un fichier sans extension"
        raise CorpusFileError(
            f"{kind} non pris en charge — formats acceptés : {_accepted_formats()}"
        )
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CorpusFileError(f"lecture impossible ({exc.strerror or exc})") from None
    errors: list[CorpusFileError] = []
    articles = reader(SourceFile(path, _display_path(path, root), data), errors.append)
    return articles, errors


def read_articles(path: Path, root: Path) -> list[Article]:
    """The articles of one file of the corpus folder `root`.

    Raises `CorpusFileError` (with `line` set when one line is at fault) when the file,
    or any line of it, cannot be read.
    """
    located, errors = _read(path, root)
    if errors:
        raise errors[0]
    return [article for article, _ in located]


def _corpus_files(corpus_dir: Path) -> list[Path]:
    files = []
    for path in corpus_dir.rglob("*"):
        rel = path.relative_to(corpus_dir)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        # The README explains the folder to people; it is not an article.
        if len(rel.parts) == 1 and rel.name.lower() == "readme.md":
            continue
        files.append(path)
    return sorted(files, key=lambda p: p.relative_to(corpus_dir).as_posix())


def corpus_file_hashes(corpus_dir: Path) -> dict[str, str]:
    """sha256 of every file `load_corpus` would read, by path relative to the folder:
    equal to `load_corpus(...).file_hashes` without parsing anything."""
    hashes = {}
    for path in _corpus_files(Path(corpus_dir)) if Path(corpus_dir).is_dir() else ():
        try:
            hashes[path.relative_to(corpus_dir).as_posix()] = file_hash(path.read_bytes())
        except OSError:
            continue
    return hashes


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_corpus(corpus_dir: Path, only: Collection[str] | None = None) -> CorpusLoad:
    """Every article of `corpus_dir` (recursively), with the problems met on the way;
    with `only`, just the files of those names (relative paths, as in `file_hashes`).

    Raises `CorpusError` when the folder is missing or (reading it all) yields no article.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        what = "n'est pas un dossier" if corpus_dir.exists() else "est introuvable"
        raise CorpusError(
            f"Le dossier du corpus « {corpus_dir} » {what}. Créez-le et placez-y des articles "
            f"({_accepted_formats()}), ou indiquez un autre dossier avec QA_CORPUS_DIR."
        )
    articles: list[Article] = []
    problems: list[CorpusProblem] = []
    hashes: dict[str, str] = {}
    first_seen: dict[str, str] = {}
    for path in _corpus_files(corpus_dir):
        name = path.relative_to(corpus_dir).as_posix()
        if only is not None and name not in only:
            continue
        display = _display_path(path, corpus_dir)
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(CorpusProblem(display, None, f"lecture impossible ({exc.strerror})"))
            continue
        hashes[name] = file_hash(data)
        try:
            found, errors = _read(path, corpus_dir, data)
        except CorpusFileError as exc:
            problems.append(CorpusProblem(display, exc.line, exc.message))
            continue
        problems.extend(CorpusProblem(display, e.line, e.message) for e in errors)
        for article, line in found:
            if article.id in first_seen:
                problems.append(
                    CorpusProblem(
                        display,
                        line,
                        f"identifiant « {article.id} » déjà utilisé par {first_seen[article.id]}"
                        " — article ignoré ; donnez-lui un autre id",
                    )
                )
                continue
            first_seen[article.id] = display if line is None else f"{display}:{line}"
            articles.append(article)
    if not articles and only is None:
        listed = "".join(f"\n  - {problem}" for problem in problems)
        raise CorpusError(
            f"Aucun article lisible dans « {corpus_dir} ». Ajoutez des fichiers "
            f"{_accepted_formats()} (voir corpus/README.md) ou indiquez un autre dossier avec "
            f"QA_CORPUS_DIR.{' Problèmes :' + listed if listed else ''}"
        )
    return CorpusLoad(tuple(articles), tuple(problems), hashes)
