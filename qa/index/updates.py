"""Adding and removing articles: the corpus folder stays the source of truth.

`add_paths` copies new files into the corpus folder (skipping content the index
already holds) and `remove_articles` moves an article's file to `corpus/.trash/`
(a JSON Lines file loses only that line); both then apply just that change to the
index, without reading the rest of the corpus. Because the corpus changes first and
the index second, a process killed in between leaves a corpus that the next
`qa index` (or start-up) catches up with, since file hashes no longer match.
Chunking, embedding and publishing are the index's business.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from qa.config import Settings
from qa.corpus import (
    READERS,
    CorpusFileError,
    corpus_key,
    file_hash,
    id_taken_message,
    read_articles,
)
from qa.embeddings.embedder import Embedder
from qa.errors import CorpusError
from qa.index.fresh import Progress, text_hash
from qa.index.publish import write_lock
from qa.index.view import Index
from qa.index.writer import UpdateReport, apply_changes, load_or_build

TRASH = ".trash"


@dataclass(frozen=True)
class AddResult:
    copied: tuple[str, ...]
    skipped: tuple[str, ...]  # "file: reason", in French
    report: UpdateReport | None


def _candidate_files(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file()
                            and p.suffix.lower() in READERS and not p.name.startswith("."))
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError(f"{path} est introuvable : indiquez un fichier ou un dossier.")
    return files


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    stem, suffix, n = target.stem, target.suffix, 2
    while target.exists():
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target


def add_paths(settings: Settings, embedder: Embedder, paths: list[Path],
              progress: bool = False, on_progress: Progress | None = None
              ) -> tuple[Index, AddResult]:
    """Copy readable, not-yet-indexed files into the corpus, then index just them."""
    corpus_dir = Path(settings.corpus_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    index = _caught_up(settings, embedder, progress)
    known = index.text_hashes if index else {}
    paths_of = {a.id: a.path for a in index.articles.values()} if index else {}
    copied, skipped, added, files = [], [], [], {}
    with write_lock(Path(settings.index_dir)):
        for source in _candidate_files([Path(p) for p in paths]):
            try:
                articles = read_articles(source, source.parent)
            except CorpusFileError as exc:
                where = f"{source}:{exc.line}" if exc.line else str(source)
                skipped.append(f"{where} : {exc.message}")
                continue
            fresh = [a for a in articles if text_hash(a.text) not in known]
            if not fresh:
                ids = ", ".join(sorted({known[text_hash(a.text)] for a in articles}))
                skipped.append(f"{source} : déjà dans le corpus (article {ids})")
                continue
            taken = [a.id for a in fresh if a.id in paths_of]
            if taken:
                skipped.append(f"{source} : {id_taken_message(taken[0], paths_of[taken[0]])}"
                               " — renommez le fichier ou changez son id")
                continue
            target = _free_name(corpus_dir, source.name)
            shutil.copy2(source, target)
            copied.append(str(target))
            # Read back from the corpus, so that the articles carry their corpus path.
            added += read_articles(target, corpus_dir)
            files[corpus_key(corpus_dir, target)] = file_hash(target.read_bytes())
            known.update({text_hash(a.text): a.id for a in fresh})
            paths_of.update({a.id: str(target) for a in fresh})
    if index is None:  # the corpus was empty: the added files are all of it
        index, report = load_or_build(settings, embedder, progress=progress,
                                      on_progress=on_progress)
    elif added:
        index, report = apply_changes(settings, embedder, add=added, files=files,
                                      progress=progress, on_progress=on_progress, base=index)
    else:
        report = None
    return index, AddResult(tuple(copied), tuple(skipped), report)


def _caught_up(settings: Settings, embedder: Embedder, progress: bool) -> Index | None:
    """The index, first brought in line with files edited by hand in the corpus
    (a no-op when none was); None when the corpus has no article yet."""
    try:
        return load_or_build(settings, embedder, progress=progress)[0]
    except CorpusError:
        return None


def _trash(corpus_dir: Path, path: Path) -> Path:
    trash = corpus_dir / TRASH
    trash.mkdir(exist_ok=True)
    target = _free_name(trash, f"{time.strftime('%Y%m%dT%H%M%S')}-{path.name}")
    shutil.move(str(path), target)
    return target


def _drop_jsonl_lines(path: Path, ids: set[str], corpus_dir: Path) -> None:
    """Rewrite a JSON Lines file without the given articles (the original goes to trash)."""
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            kept.append(line)
            continue
        if not (isinstance(row, dict) and str(row.get("id")) in ids):
            kept.append(line)
    shutil.copy2(path, _free_name(corpus_dir / TRASH, f"{time.strftime('%Y%m%dT%H%M%S')}-"
                                                     f"{path.name}"))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(kept) + ("\n" if kept else ""), encoding="utf-8")
    tmp.replace(path)


def remove_articles(settings: Settings, embedder: Embedder, article_ids: list[str],
                    progress: bool = False, on_progress: Progress | None = None
                    ) -> tuple[Index, UpdateReport | None]:
    """Move the articles' files to `corpus/.trash/` and drop them from the index."""
    corpus_dir = Path(settings.corpus_dir)
    index = _caught_up(settings, embedder, progress)
    indexed = index.articles if index else {}
    unknown = [i for i in article_ids if i not in indexed]
    if unknown:
        raise CorpusError(f"Article(s) inconnu(s) : {', '.join(unknown)} — voyez `qa list`.")
    per_file: dict[str, set[str]] = {}  # by the path shown to users, "corpus/x.jsonl"
    for article_id in article_ids:
        per_file.setdefault(indexed[article_id].path, set()).add(article_id)
    sharing = Counter(a.path for a in indexed.values())
    files: dict[str, str | None] = {}
    with write_lock(Path(settings.index_dir)):
        (corpus_dir / TRASH).mkdir(exist_ok=True)
        for shown, ids in per_file.items():
            path = (corpus_dir.parent / shown).resolve()
            key = corpus_key(corpus_dir, path)
            if path.suffix.lower() == ".jsonl" and sharing[shown] > len(ids):
                _drop_jsonl_lines(path, ids, corpus_dir)
                files[key] = file_hash(path.read_bytes())
            else:
                _trash(corpus_dir, path)
                files[key] = None
    return apply_changes(settings, embedder, remove=article_ids, files=files,
                         progress=progress, on_progress=on_progress, base=index)
