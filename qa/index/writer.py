"""The writer: what an update changes in the index, decided and committed.

An update compares the corpus with the published index by content hash, writes one
segment with the new or changed articles (`fresh`: only those are chunked and
embedded), marks removed and replaced articles as dead in their old segments,
merges segments when `segments.merge_plan` says so, and publishes the generation
(`publish`: under the write lock, swapped atomically; layout in `view`): a process
killed at any moment leaves the old or the new state, and the next run finishes the
job. `load_or_build` is the entry point of the commands and the app; `apply_changes`
serves `qa add` and `qa remove` without reading the corpus folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.corpus import (
    CorpusLoad,
    CorpusProblem,
    corpus_file_hashes,
    id_taken_message,
    key_of_shown,
    load_corpus,
)
from qa.embeddings.embedder import Embedder
from qa.errors import IndexMismatch, IndexNotBuilt
from qa.index.fresh import Progress, article_hash, new_segment, segment_name, text_hash
from qa.index.manifest import Counts, Manifest, SegmentEntry, Shape
from qa.index.publish import publish, write_lock
from qa.index.segments import Segment, merge, merge_plan
from qa.index.vector_store import VectorStore
from qa.index.view import CURRENT, Index, load, read_manifest
from qa.schema import Article

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class UpdateReport:
    """What an update did, for the CLI and the web page to tell the user."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0
    duplicates: tuple[str, ...] = ()
    embedded_chunks: int = 0
    seconds: float = 0.0
    rebuilt: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def incompatibility(saved: Manifest, settings: Settings, embedder: Embedder) -> str | None:
    """Why a saved index cannot be updated in place (it must be rebuilt), or None."""
    return Shape.of(settings, embedder).incompatibility(saved.shape)


# ---------------------------------------------------------------- updating


def deduplicate(articles: Iterable[Article], indexed: Iterable[str] = ()) -> tuple[
        list[Article], list[str]]:
    """Keep one article per distinct content, preferring one already `indexed`, then
    the first met; describe the others."""
    indexed = set(indexed)
    seen: dict[str, Article] = {}
    kept, dropped = [], []
    for article in sorted(articles, key=lambda a: a.id not in indexed):
        first = seen.setdefault(text_hash(article.text), article)
        if first is article:
            kept.append(article)
        else:
            dropped.append(duplicate_message(article, first.id, first.path))
    return kept, dropped


def duplicate_message(article: Article, first_id: str, first_path: str) -> str:
    return (f"{article.path or article.id} : même contenu que l'article « {first_id} » "
            f"({first_path}) — ignoré")


@dataclass(frozen=True)
class Changes:
    """What an update must do: articles to (re)index, ids to drop, corpus file hashes."""

    fresh: list[Article]
    gone: list[str]
    corpus_files: dict[str, str]
    moved_paths: dict[str, str]
    duplicates: list[str]
    problems: list[CorpusProblem]  # remembered for start-up messages


def update(settings: Settings, embedder: Embedder, corpus: CorpusLoad, progress: bool = False,
           rebuild: bool = False, on_progress: Progress | None = None,
           scope: Collection[str] | None = None) -> tuple[Index, UpdateReport]:
    """Bring the index in line with `corpus`, embedding only new or changed articles
    (everything when `rebuild` or when the model or chunking changed). With `scope`,
    `corpus` holds just those corpus files (added, changed or gone since the last
    update) and the articles of the other files stay as they are."""
    with write_lock(Path(settings.index_dir)):
        old = None if rebuild else _load_updatable(settings, embedder)
        if old is None and scope is not None:
            corpus, scope = load_corpus(Path(settings.corpus_dir)), None
        changes = _changes(old, corpus, scope)
        for message in changes.duplicates:
            log.warning("%s", message)
        return _commit(settings, embedder, old, changes, progress, on_progress)


def _changes(old: Index | None, corpus: CorpusLoad, scope: Collection[str] | None) -> Changes:
    """What to do to `old` so that it matches `corpus` (over `scope` only, if given)."""
    problems = list(corpus.problems)
    if old is None:
        articles, duplicates = deduplicate(corpus.articles)
        return Changes(articles, [], dict(sorted(corpus.file_hashes.items())), {}, duplicates,
                       problems)
    outside = set() if scope is None else {
        aid for aid, a in old.articles.items() if key_of_shown(a.path) not in scope}
    articles, duplicates, clashes = _screened(old, corpus.articles, outside)
    problems += clashes
    known = old.article_hashes
    moved = dict(old.manifest.moved_paths)
    moved.update({a.id: a.path for a in articles
                  if a.id in known and old.articles[a.id].path != a.path})
    files = corpus.file_hashes
    if scope is not None:
        files = {name: digest for name, digest in old.manifest.corpus_files.items()
                 if name not in scope} | files
        problems = [p for p in old.manifest.corpus_problems
                    if key_of_shown(p.path) not in scope] + problems
    return Changes(
        fresh=[a for a in articles if known.get(a.id) != article_hash(a)],
        gone=sorted(set(old.articles) - outside - {a.id for a in articles}),
        corpus_files=dict(sorted(files.items())), moved_paths=moved,
        duplicates=duplicates, problems=problems,
    )


def _screened(old: Index, articles: Iterable[Article], outside: set[str]
              ) -> tuple[list[Article], list[str], list[CorpusProblem]]:
    """The `articles` to keep next to the `outside` ones, which `old` serves and which
    stay: one per text, an indexed one first. Also the duplicates, described, and the
    articles refused for taking an outside article's id, as `CorpusProblem`s."""
    taken = {h: aid for h, aid in old.text_hashes.items() if aid in outside}
    candidates, duplicates, clashes = [], [], []
    for article in articles:
        first = taken.get(text_hash(article.text))
        if article.id in outside:  # as `load_corpus` does for ids repeated in the folder
            clashes.append(CorpusProblem(article.path, None, (
                f"{id_taken_message(article.id, old.articles[article.id].path)}"
                " — article ignoré ; donnez-lui un autre id")))
        elif first is not None:
            duplicates.append(duplicate_message(article, first, old.articles[first].path))
        else:
            candidates.append(article)
    kept, more = deduplicate(candidates, old.articles)
    return kept, duplicates + more, clashes



def apply_changes(settings: Settings, embedder: Embedder, add: Sequence[Article] = (),
                  remove: Sequence[str] = (), files: dict[str, str | None] | None = None,
                  progress: bool = False, on_progress: Progress | None = None,
                  base: Index | None = None) -> tuple[Index, UpdateReport]:
    """Index `add` and drop `remove` without reading the corpus folder: the work is
    proportional to the change. `files` gives the new sha256 of the corpus files the
    change touched (None: file gone), for the next start-up's up-to-date check.

    `base`, the index the caller just loaded, spares reading it again when it is
    still the published one; the update then changes its vector store in place."""
    if settings.store == "qdrant":
        from qa.index.qdrant import writer as engine_writer

        return engine_writer.apply_changes(settings, embedder, add, remove, files, progress,
                                           on_progress, base)
    index_dir = Path(settings.index_dir)
    with write_lock(index_dir):
        current = base is not None and base.path.resolve() == (index_dir / CURRENT).resolve()
        old = base if current else _load_updatable(settings, embedder)
        if old is None:
            raise IndexNotBuilt("Aucun index à mettre à jour : lancez `qa index`.")
        changes = requested_changes(old, add, remove, files, dict(old.manifest.moved_paths))
        return _commit(settings, embedder, old, changes, progress, on_progress)


def requested_changes(old, add: Sequence[Article], remove: Sequence[str],
                      files: dict[str, str | None] | None, moved: dict[str, str]) -> Changes:
    """What an `apply_changes` call asks of the index `old` (any store's): the articles
    to add or update (unchanged ones skipped, duplicates described), the ids to remove,
    and the corpus files' new hashes (None: the file is gone)."""
    renewed = {a.id for a in add}
    known = old.article_hashes
    articles, duplicates, _ = _screened(old, add, set(known) - renewed)
    fresh = [a for a in articles if known.get(a.id) != article_hash(a)]
    corpus_files = dict(old.manifest.corpus_files)
    for name, digest in (files or {}).items():
        if digest is None:
            corpus_files.pop(name, None)
        else:
            corpus_files[name] = digest
    return Changes(fresh, sorted(set(remove) & set(known) - renewed),
                   dict(sorted(corpus_files.items())), moved, duplicates,
                   list(old.manifest.corpus_problems))


def _load_updatable(settings: Settings, embedder: Embedder) -> Index | None:
    saved = read_manifest(Path(settings.index_dir))
    if saved is None:
        return None
    reason = incompatibility(saved, settings, embedder)
    if reason:
        log.info("Reconstruction complète de l'index : %s", reason)
        return None
    try:
        return load(Path(settings.index_dir))
    except (OSError, ValueError, KeyError, RuntimeError, IndexMismatch) as exc:
        log.warning("Index illisible (%s) : reconstruction complète", exc)
        return None


def _commit(settings: Settings, embedder: Embedder, old: Index | None, changes: Changes,
            progress: bool, on_progress: Progress | None) -> tuple[Index, UpdateReport]:
    """Write the generation that applies `changes` to `old`, then swap it in.
    Must be called with the write lock held."""
    started = time.perf_counter()
    index_dir = Path(settings.index_dir)
    store = old.store if old else VectorStore.create(embedder.dim)
    segments = list(old.segments) if old else []
    dead = {name: set(ids) for name, ids in old.dead.items()} if old else {}
    replaced = [a.id for a in changes.fresh if old and a.id in old.articles]
    leaving = [*changes.gone, *replaced]
    if leaving:  # one call: each scans the store's id map once
        store.remove(np.concatenate([old.chunk_rows_of(aid) for aid in leaving]))
    for article_id in leaving:
        dead.setdefault(old.segment_of(article_id), set()).add(article_id)
    moved = {aid: path for aid, path in changes.moved_paths.items()
             if aid not in changes.gone and aid not in replaced}
    next_row = old.manifest.next_row if old else 0
    written, fresh_rows = [], np.empty(0, np.int64)
    if changes.fresh:
        fresh = new_segment(changes.fresh, next_row, settings, embedder, progress, on_progress)
        fresh_rows = fresh.segment.chunk_rows
        store.add(fresh_rows, fresh.vectors)
        next_row += len(fresh_rows)
        segments.append(fresh.segment)
        written.append(fresh.segment)
    segments, dead, merged = _merged(segments, dead, moved)
    written += merged
    live = {s.name for s in segments}
    written = [s for s in written if s.name in live]
    frozen = {name: frozenset(ids) for name, ids in dead.items() if ids and name in live}
    seconds = round(time.perf_counter() - started, 3)
    manifest = Manifest(
        shape=Shape.of(settings, embedder),
        segments=tuple(SegmentEntry(s.name, tuple(sorted(frozen.get(s.name, ()))))
                       for s in segments),
        counts=_counts(segments, frozen), corpus_files=changes.corpus_files,
        corpus_problems=tuple(changes.problems), moved_paths=dict(sorted(moved.items())),
        vector_store=store.kind, next_row=next_row,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), last_update_seconds=seconds,
        build_seconds=old.manifest.build_seconds if old else seconds,
    )
    gen = publish(manifest, segments, written, store, index_dir)
    old_ids = set(old.articles) if old else set()
    report = UpdateReport(
        added=tuple(a.id for a in changes.fresh if a.id not in old_ids),
        updated=tuple(replaced), removed=tuple(changes.gone),
        unchanged=len(old_ids) - len(changes.gone) - len(replaced),
        duplicates=tuple(changes.duplicates),
        embedded_chunks=len(fresh_rows),
        seconds=round(time.perf_counter() - started, 3), rebuilt=old is None,
    )
    return Index(gen, manifest, segments, frozen, store), report


def _counts(segments: list[Segment], dead: dict[str, frozenset[str]]) -> Counts:
    articles = chunks = sentences = 0
    for segment in segments:
        alive = segment.alive(dead.get(segment.name, frozenset()))
        articles += int(alive.sum())
        chunks += int(alive[segment.chunk_article].sum())
        sentences += int(alive[segment.sentence_article].sum())
    return Counts(articles, chunks, sentences)


def _merged(segments: list[Segment], dead: dict[str, set[str]], moved: dict[str, str]
            ) -> tuple[list[Segment], dict[str, set[str]], list[Segment]]:
    """Apply `merge_plan` until it has nothing left to merge; also returns the new ones."""
    created = []
    while True:
        frozen = [frozenset(dead.get(s.name, ())) for s in segments]
        plan = merge_plan([s.live_chunks(d) for s, d in zip(segments, frozen, strict=True)],
                          [s.n_chunks for s in segments])
        if not plan:
            return segments, dead, created
        group = plan[0]
        parts = [(segments[i], frozen[i]) for i in group]
        out = [s for i, s in enumerate(segments) if i not in group]
        if any(s.alive(d).any() for s, d in parts):
            combined = merge(segment_name(), parts, moved)
            out.insert(group[0], combined)
            created.append(combined)
        for segment, _ in parts:
            dead.pop(segment.name, None)
        segments = out


def load_or_build(settings: Settings, embedder: Embedder, progress: bool = False,
                  rebuild: bool = False, on_progress: Progress | None = None
                  ) -> tuple[Index, UpdateReport | None]:
    """The index of the configured corpus: loaded as is when no corpus file changed,
    else updated from the files that changed, which alone are parsed (all of them
    when the index is rebuilt because the model or chunking changed). With
    `QA_STORE=qdrant` the same, in the Qdrant collection (`qa.index.qdrant`)."""
    if settings.store == "qdrant":
        from qa.index.qdrant import writer as engine_writer

        return engine_writer.load_or_build(settings, embedder, progress, rebuild, on_progress)
    index_dir, corpus_dir = Path(settings.index_dir), Path(settings.corpus_dir)
    saved = read_manifest(index_dir)
    usable = (not rebuild and saved is not None
              and incompatibility(saved, settings, embedder) is None)
    on_disk = corpus_file_hashes(corpus_dir)
    indexed = saved.corpus_files if usable else {}
    if usable and on_disk == indexed:
        try:
            index = load(index_dir)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            log.warning("Index illisible (%s) : reconstruction", exc)
        else:
            _log_problems(saved.corpus_problems)
            return index, None
    return catch_up(update, settings, embedder, on_disk, indexed if usable else None,
                    progress=progress, rebuild=rebuild, on_progress=on_progress)


def catch_up(apply, settings: Settings, embedder: Embedder, on_disk: dict[str, str],
             indexed: dict[str, str] | None, **options):
    """Parse the corpus files whose hash differs from `indexed` (every file when
    `indexed` is None: the index cannot be updated in place) and `apply` them with
    `apply(settings, embedder, corpus, scope=…, **options)`, a store's `update`."""
    scope = None
    if indexed is not None and on_disk:
        scope = {name for name in on_disk.keys() | indexed.keys()
                 if on_disk.get(name) != indexed.get(name)}
    corpus = load_corpus(Path(settings.corpus_dir), only=scope)
    index, report = apply(settings, embedder, corpus, scope=scope, **options)
    _log_problems(index.manifest.corpus_problems)
    return index, report


def _log_problems(problems: Iterable[CorpusProblem]) -> None:
    for problem in problems:
        log.warning("%s", problem)

