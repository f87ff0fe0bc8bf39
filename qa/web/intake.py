"""What an upload may bring into the corpus: limits, clean names, types by content.

Owns the checks every upload passes before the engine sees it, from the API or the
page: the number of files and their total size (`check_upload`), a file name reduced
to one harmless component (`clean_name`: no folder, no `..`, no control character, a
bounded length), and the file's content matching its suffix (`sniff`: a PDF starts
like one, a text is UTF-8 without NUL bytes, an image or archive renamed `.md` is
refused). `stage` copies the accepted files under their clean names into a private
folder, from which `Assistant.add` copies them into `corpus/`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from qa.corpus import READERS

# Beyond this many characters a file name is a mistake or an attack; the article's id
# comes from it, and ids are shown and typed.
MAX_NAME_CHARS = 120
# How much of a file `sniff` reads to decide, besides decoding texts whole.
HEAD_BYTES = 8192
MEGABYTE = 1024 * 1024

TOO_MANY_FILES = ("Trop de fichiers : {count} envoyés, au plus {limit} par envoi. "
                  "Rien n'a été indexé.")
TOO_LARGE = ("Envoi trop volumineux : {size} Mo, au plus {limit} Mo par envoi. "
             "Rien n'a été indexé.")
NO_FILE = "Aucun fichier reçu : joignez un ou plusieurs fichiers d'articles (champ « files »)."

_TEXT_SUFFIXES = {".md", ".txt", ".jsonl", ".html", ".htm"}
# Magic numbers of files people upload by mistake (or on purpose) under a text name.
_SIGNATURES = (
    (b"%PDF-", "PDF"),
    (b"PK\x03\x04", "archive ZIP (ou document Office)"),
    (b"\x89PNG", "image PNG"),
    (b"\xff\xd8\xff", "image JPEG"),
    (b"GIF8", "image GIF"),
    (b"RIFF", "fichier RIFF (image WebP, son ou vidéo)"),
    (b"\x7fELF", "programme exécutable"),
    (b"MZ", "programme Windows"),
    (b"\x1f\x8b", "archive gzip"),
    (b"7z\xbc\xaf", "archive 7z"),
    (b"Rar!", "archive RAR"),
    (b"\xd0\xcf\x11\xe0", "document Office ancien"),
    (b"ID3", "son MP3"),
    (b"OggS", "son Ogg"),
    (b"\x00\x00\x00", "fichier binaire"),
)
_UNSAFE = re.compile(r"[^\w.\-]+")
_RUNS = re.compile(r"([.\-_])[.\-_]+")
_SUFFIX = re.compile(r"\.([A-Za-z0-9]{1,10})$")


class UploadRefused(Exception):
    """The whole upload is refused before anything is written: `status` is the HTTP code."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def check_upload(count: int, total_bytes: int, max_files: int, max_mb: int) -> None:
    """`UploadRefused` for no file, too many files or too many bytes in one upload."""
    if count == 0:
        raise UploadRefused(NO_FILE, 400)
    if count > max_files:
        raise UploadRefused(TOO_MANY_FILES.format(count=count, limit=max_files), 413)
    if total_bytes > max_mb * MEGABYTE:
        raise UploadRefused(TOO_LARGE.format(size=_megabytes(total_bytes), limit=max_mb), 413)


def _megabytes(size: int) -> str:
    return f"{size / MEGABYTE:.1f}".replace(".", ",")


def clean_name(name: str | None) -> str:
    """One harmless file name: the last component only (`../../x.md` → `x.md`,
    `C:\\a\\b.md` → `b.md`), letters, digits, `.`, `-` and `_` (others become `-`),
    no leading dot (the corpus skips hidden files), at most `MAX_NAME_CHARS`, and the
    suffix kept so that the right reader reads it."""
    name = unicodedata.normalize("NFC", name or "")
    name = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in name)
    name = re.split(r"[/\\]", name)[-1].strip()
    stem, suffix = name, ""
    found = _SUFFIX.search(name)
    if found:
        stem, suffix = name[: found.start()], found.group(1).lower()
    stem = _RUNS.sub(r"\1", _UNSAFE.sub("-", stem)).strip(".-_ ")
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1].rstrip(".-_ ") or "article"
    return f"{stem}.{suffix}" if suffix else stem


def sniff(path: Path) -> str | None:
    """Why the file's content does not match its suffix, in French; None when it does.
    Unknown suffixes are left to the engine, which says it does not read them."""
    suffix = path.suffix.lower()
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    found = next((kind for magic, kind in _SIGNATURES if head.startswith(magic)), None)
    if suffix == ".pdf":
        return None if found == "PDF" else (
            "le contenu n'est pas un PDF (il ne commence pas par « %PDF- »)")
    if suffix not in _TEXT_SUFFIXES:
        return None
    if found:
        return f"le contenu est un(e) {found}, pas du texte {suffix}"
    if b"\x00" in head:
        return f"le contenu est binaire, pas du texte {suffix}"
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return f"le contenu n'est pas du texte UTF-8 ({suffix})"
    return None


@dataclass
class Staged:
    """Accepted files under clean names in a private folder, and the refused ones
    as « name : reason » lines; `close()` removes the folder."""

    folder: Path
    paths: list[Path]
    refused: list[str]

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Staged:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _free(folder: Path, name: str) -> Path:
    target, n = folder / name, 2
    stem, suffix = target.stem, target.suffix
    while target.exists():
        target, n = folder / f"{stem}-{n}{suffix}", n + 1
    return target


def stage(files: Iterable[tuple[str | None, Path | BinaryIO]]) -> Staged:
    """Copy each `(name as sent, file on disk or open file)` under its clean name into a
    new private folder, leaving out (with the reason) the files whose content betrays
    their name."""
    folder = Path(tempfile.mkdtemp(prefix="qa-upload-"))
    staged = Staged(folder, [], [])
    try:
        for sent, source in files:
            name = clean_name(sent)
            target = _free(folder, name)
            if isinstance(source, Path):
                shutil.copyfile(source, target)
            else:
                with target.open("wb") as out:
                    shutil.copyfileobj(source, out)
            reason = sniff(target) if target.suffix.lower() in READERS else None
            if reason:
                staged.refused.append(f"{name} : {reason} — non indexé")
                target.unlink()
            else:
                staged.paths.append(target)
    except BaseException:
        staged.close()
        raise
    return staged
