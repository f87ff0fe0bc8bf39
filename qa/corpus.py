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
import json
import re
from collections.abc import Callable
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
    "read_jsonl",
    "read_markdown",
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
            "fichier binaire (octets NUL) — seuls les fichiers texte .md, .txt et .jsonl "
            "sont lus ; supprimez-le du corpus"
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


def read_text(source: SourceFile, report: Callable[[CorpusFileError], None]) -> list[Located]:
    """A plain-text article; a short first line set apart from the body is its title."""
    text = decode_text(source.data).strip("\n")
    _require_text(text)
    first, _, rest = text.partition("\n")
    title = ""
    if rest.strip() and len(first.strip()) <= _MAX_TITLE_CHARS:
        # In hard-wrapped text the first line is a title only if it was cut on purpose:
        # followed by a blank line, or the next word would have fitted on it.
        width = wrap_width(text)
        next_line = rest.split("\n", 1)[0]
        if (
            width is None
            or not next_line.strip()
            or len(first.rstrip()) + 1 + len(next_line.split()[0]) <= width
        ):
            title = first.strip()
    body = _clean_body(rest) if title else _clean_body(text)
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


READERS: dict[str, Reader] = {
    ".md": read_markdown,
    ".txt": read_text,
    ".jsonl": read_jsonl,
}


# --------------------------------------------------------------------------- loading


def _display_path(path: Path, root: Path) -> str:
    try:
        return path.absolute().relative_to(root.absolute().parent).as_posix()
    except ValueError:
        return path.as_posix()


def _accepted_formats() -> str:
    return ", ".join(sorted(READERS))


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


def load_corpus(corpus_dir: Path) -> CorpusLoad:
    """Every article of `corpus_dir` (recursively), with the problems met on the way.

    Raises `CorpusError` when the folder is missing or yields no article.
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
        display = _display_path(path, corpus_dir)
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(CorpusProblem(display, None, f"lecture impossible ({exc.strerror})"))
            continue
        hashes[path.relative_to(corpus_dir).as_posix()] = hashlib.sha256(data).hexdigest()
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
    if not articles:
        listed = "".join(f"\n  - {problem}" for problem in problems)
        raise CorpusError(
            f"Aucun article lisible dans « {corpus_dir} ». Ajoutez des fichiers "
            f"{_accepted_formats()} (voir corpus/README.md) ou indiquez un autre dossier avec "
            f"QA_CORPUS_DIR.{' Problèmes :' + listed if listed else ''}"
        )
    return CorpusLoad(tuple(articles), tuple(problems), hashes)
