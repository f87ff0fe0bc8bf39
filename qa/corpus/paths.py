"""How corpus files are named: the one place that maps between a file, its key in the
index manifest's `corpus_files`, and the path an `Article` shows to users.

A file's key is its path relative to the corpus folder ("a/b.md"); its shown path is
relative to the corpus folder's parent, so that it names the folder too ("corpus/a/b.md").
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["corpus_key", "key_of_shown", "shown_path"]


def corpus_key(corpus_dir: Path, path: Path) -> str:
    """The name of `path`, a file inside `corpus_dir`, in the manifest's `corpus_files`
    and in `CorpusLoad.file_hashes`: POSIX style, relative to `corpus_dir`.

    Both may be relative (as met while walking the folder) or one absolute, resolved
    and the other not (a path rebuilt from an article's shown path); raises `ValueError`
    when `path` is not inside `corpus_dir`.
    """
    try:
        return path.relative_to(corpus_dir).as_posix()
    except ValueError:
        # Only resolving both sides compares a relative or symlinked folder with a
        # resolved path; the plain comparison above keeps a symlinked file's own name.
        return path.resolve().relative_to(corpus_dir.resolve()).as_posix()


def shown_path(path: Path, corpus_dir: Path) -> str:
    """`Article.path` of a file of `corpus_dir`: relative to the folder's parent, e.g.
    "corpus/a/b.md"; the file's path as given when it lies outside that parent."""
    try:
        return path.absolute().relative_to(corpus_dir.absolute().parent).as_posix()
    except ValueError:
        return path.as_posix()


def key_of_shown(shown: str) -> str:
    """The `corpus_key` of a file from its `shown_path`: "corpus/a/b.md" → "a/b.md";
    "" (an article with no file) → ""."""
    return Path(shown).relative_to(Path(shown).parts[0]).as_posix() if shown else ""
