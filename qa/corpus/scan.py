"""Reading the corpus folder: which files count, their hashes, their articles, and a
report of every file, line or article that had to be skipped.

`load_corpus` walks the folder, skips and reports what it cannot read (or an article
whose id another one already has), and refuses only a corpus with no article at all.
Reading one file is left to the reader of its format in `READERS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from qa.corpus.formats import ACCEPTED_FORMATS, READERS
from qa.corpus.paths import corpus_key, shown_path
from qa.corpus.source import CorpusFileError, Located, SourceFile
from qa.errors import CorpusError
from qa.schema import Article

__all__ = [
    "CorpusLoad",
    "CorpusProblem",
    "corpus_file_hashes",
    "file_hash",
    "id_taken_message",
    "load_corpus",
    "read_articles",
]


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

    `file_hashes` maps each file's `corpus_key` (its path relative to the corpus folder,
    POSIX style) to the sha256 of its bytes, so that a change in any file can be detected.
    """

    articles: tuple[Article, ...]
    problems: tuple[CorpusProblem, ...]
    file_hashes: dict[str, str]


def id_taken_message(article_id: str, used_by: str) -> str:
    """Why an article is refused when another one, at `used_by`, already has its id;
    callers add what the user should do, which depends on where the clash was met."""
    return f"identifiant « {article_id} » déjà utilisé par {used_by}"


def file_hash(data: bytes) -> str:
    """The sha256 of a file's bytes, as kept in `CorpusLoad.file_hashes`."""
    return hashlib.sha256(data).hexdigest()


def _read(
    path: Path, root: Path, data: bytes | None = None
) -> tuple[list[Located], list[CorpusFileError]]:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        kind = path.suffix.lower() or "un fichier sans extension"
        raise CorpusFileError(
            f"{kind} non pris en charge — formats acceptés : {ACCEPTED_FORMATS}"
        )
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CorpusFileError(f"lecture impossible ({exc.strerror or exc})") from None
    errors: list[CorpusFileError] = []
    articles = reader(SourceFile(path, shown_path(path, root), data), errors.append)
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
    return sorted(files, key=lambda p: corpus_key(corpus_dir, p))


def corpus_file_hashes(corpus_dir: Path) -> dict[str, str]:
    """sha256 of every file `load_corpus` would read, by `corpus_key`: equal to
    `load_corpus(...).file_hashes` without parsing anything."""
    corpus_dir = Path(corpus_dir)
    hashes = {}
    for path in _corpus_files(corpus_dir) if corpus_dir.is_dir() else ():
        try:
            hashes[corpus_key(corpus_dir, path)] = file_hash(path.read_bytes())
        except OSError:
            continue
    return hashes


def load_corpus(corpus_dir: Path, only: Collection[str] | None = None) -> CorpusLoad:
    """Every article of `corpus_dir` (recursively), with the problems met on the way;
    with `only`, just the files of those names (`corpus_key`s, as in `file_hashes`).

    Raises `CorpusError` when the folder is missing or (reading it all) yields no article.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        what = "n'est pas un dossier" if corpus_dir.exists() else "est introuvable"
        raise CorpusError(
            f"Le dossier du corpus « {corpus_dir} » {what}. Créez-le et placez-y des articles "
            f"({ACCEPTED_FORMATS}), ou indiquez un autre dossier avec QA_CORPUS_DIR."
        )
    articles: list[Article] = []
    problems: list[CorpusProblem] = []
    hashes: dict[str, str] = {}
    first_seen: dict[str, str] = {}
    for path in _corpus_files(corpus_dir):
        name = corpus_key(corpus_dir, path)
        if only is not None and name not in only:
            continue
        display = shown_path(path, corpus_dir)
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
                message = id_taken_message(article.id, first_seen[article.id])
                problems.append(CorpusProblem(
                    display, line, f"{message} — article ignoré ; donnez-lui un autre id"
                ))
                continue
            first_seen[article.id] = display if line is None else f"{display}:{line}"
            articles.append(article)
    if not articles and only is None:
        listed = "".join(f"\n  - {problem}" for problem in problems)
        raise CorpusError(
            f"Aucun article lisible dans « {corpus_dir} ». Ajoutez des fichiers "
            f"{ACCEPTED_FORMATS} (voir corpus/README.md) ou indiquez un autre dossier avec "
            f"QA_CORPUS_DIR.{' Problèmes :' + listed if listed else ''}"
        )
    return CorpusLoad(tuple(articles), tuple(problems), hashes)
