"""Building and updating the index folder, incrementally and atomically.

An update writes one segment with the new or changed articles (only those are
chunked and embedded), marks removed and replaced articles as dead in their old
segments, merges segments when `segments.merge_plan` says so, saves the vector
store, and only then repoints `index/current` (layout in `index`): a process killed
at any moment leaves the old or the new state, and the next run finishes the job.
Writers are serialised by a lock; segments no generation uses any more are deleted
after the swap. `load_or_build` is the entry point of the commands and the app;
`apply_changes` serves `qa add` and `qa remove` without reading the corpus folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import text as frtext
from .chunking import chunk_articles
from .config import Settings
from .corpus import CorpusLoad, CorpusProblem, corpus_file_hashes, load_corpus
from .embeddings import Embedder
from .errors import IndexLocked, IndexMismatch, IndexNotBuilt
from .index import CURRENT, FORMAT, SEGMENTS, Index, load, read_manifest
from .lexical import Postings
from .schema import Article
from .segments import Segment, merge, merge_plan
from .vector_store import VectorStore

log = logging.getLogger(__name__)

_LOCK_WAIT_SECONDS = 60.0
# Texts per call to the embedder: the granularity of progress reports.
_ENCODE_BATCH = 256

Progress = Callable[[int, int], object]  # (texts embedded so far, texts to embed)


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


# ---------------------------------------------------------------- manifest


def article_hash(article: Article) -> str:
    """Changes whenever anything indexed about the article changes."""
    return hashlib.sha256(json.dumps(article.meta() | {"text": article.text, "path": ""},
                                     sort_keys=True).encode()).hexdigest()


def text_hash(text: str) -> str:
    """Identifies an article's content, whatever its file or id (for deduplication)."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


def _compatibility(settings: Settings, embedder: Embedder) -> dict:
    return {
        "format": FORMAT,
        "embedding": {"model": settings.embedding_model, "fingerprint": embedder.fingerprint,
                      "dim": embedder.dim},
        "chunker": {"chunk_tokens": settings.chunk_tokens, "overlap": settings.chunk_overlap,
                    "length": "model tokens"},
    }


def incompatibility(saved: dict, settings: Settings, embedder: Embedder) -> str | None:
    """Why a saved index cannot be updated in place (it must be rebuilt), or None."""
    reasons = {"format": "format de l'index différent",
               "embedding": "modèle d'embeddings différent",
               "chunker": "réglages de découpage différents"}
    expected = _compatibility(settings, embedder)
    for key, reason in reasons.items():
        if saved.get(key) != expected[key]:
            return reason
    return None


# ---------------------------------------------------------------- locking


@contextmanager
def write_lock(index_dir: Path, wait: float = _LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Serialise writers of one index folder across processes (readers never wait)."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        deadline = time.monotonic() + wait
        announced = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IndexLocked(
                        f"L'index {index_dir} est en cours de mise à jour par un autre "
                        "processus ; réessayez quand il aura fini."
                    ) from None
                if not announced:
                    log.warning("Index %s en cours de mise à jour ailleurs : attente…", index_dir)
                    announced = True
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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
    problems: list[dict]  # `CorpusProblem`s as dicts, remembered for start-up messages


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
    problems = [asdict(p) for p in corpus.problems]
    if old is None:
        articles, duplicates = deduplicate(corpus.articles)
        return Changes(articles, [], dict(sorted(corpus.file_hashes.items())), {}, duplicates,
                       problems)
    outside = set() if scope is None else {
        aid for aid, a in old.articles.items() if corpus_name(a.path) not in scope}
    articles, duplicates, clashes = _screened(old, corpus.articles, outside)
    problems += clashes
    known = old.article_hashes
    moved = dict(old.manifest.get("moved_paths", {}))
    moved.update({a.id: a.path for a in articles
                  if a.id in known and old.articles[a.id].path != a.path})
    files = corpus.file_hashes
    if scope is not None:
        files = {name: digest for name, digest in old.manifest.get("corpus_files", {}).items()
                 if name not in scope} | files
        problems = [p for p in old.manifest.get("corpus_problems", [])
                    if corpus_name(p["path"]) not in scope] + problems
    return Changes(
        fresh=[a for a in articles if known.get(a.id) != article_hash(a)],
        gone=sorted(set(old.articles) - outside - {a.id for a in articles}),
        corpus_files=dict(sorted(files.items())), moved_paths=moved,
        duplicates=duplicates, problems=problems,
    )


def _screened(old: Index, articles: Iterable[Article], outside: set[str]
              ) -> tuple[list[Article], list[str], list[dict]]:
    """The `articles` to keep next to the `outside` ones, which `old` serves and which
    stay: one per text, an indexed one first. Also the duplicates, described, and the
    articles refused for taking an outside article's id, as `CorpusProblem` dicts."""
    taken = {h: aid for h, aid in old.text_hashes.items() if aid in outside}
    candidates, duplicates, clashes = [], [], []
    for article in articles:
        first = taken.get(text_hash(article.text))
        if article.id in outside:  # as `load_corpus` does for ids repeated in the folder
            clashes.append(asdict(CorpusProblem(article.path, None, (
                f"identifiant « {article.id} » déjà utilisé par {old.articles[article.id].path}"
                " — article ignoré ; donnez-lui un autre id"))))
        elif first is not None:
            duplicates.append(duplicate_message(article, first, old.articles[first].path))
        else:
            candidates.append(article)
    kept, more = deduplicate(candidates, old.articles)
    return kept, duplicates + more, clashes


def corpus_name(path: str) -> str:
    """An article's file as named in `corpus_files`, from its path as shown to users
    ("corpus/a/b.md": relative to the corpus folder's parent)."""
    return Path(path).relative_to(Path(path).parts[0]).as_posix() if path else ""


def apply_changes(settings: Settings, embedder: Embedder, add: Sequence[Article] = (),
                  remove: Sequence[str] = (), files: dict[str, str | None] | None = None,
                  progress: bool = False, on_progress: Progress | None = None,
                  base: Index | None = None) -> tuple[Index, UpdateReport]:
    """Index `add` and drop `remove` without reading the corpus folder: the work is
    proportional to the change. `files` gives the new sha256 of the corpus files the
    change touched (None: file gone), for the next start-up's up-to-date check.

    `base`, the index the caller just loaded, spares reading it again when it is
    still the published one; the update then changes its vector store in place."""
    index_dir = Path(settings.index_dir)
    with write_lock(index_dir):
        current = base is not None and base.path.resolve() == (index_dir / CURRENT).resolve()
        old = base if current else _load_updatable(settings, embedder)
        if old is None:
            raise IndexNotBuilt("Aucun index à mettre à jour : lancez `qa index`.")
        renewed = {a.id for a in add}
        articles, duplicates, _ = _screened(old, add, set(old.articles) - renewed)
        known = old.article_hashes
        fresh = [a for a in articles if known.get(a.id) != article_hash(a)]
        corpus_files = dict(old.manifest.get("corpus_files", {}))
        for name, digest in (files or {}).items():
            if digest is None:
                corpus_files.pop(name, None)
            else:
                corpus_files[name] = digest
        changes = Changes(fresh, sorted(set(remove) & set(known) - renewed), dict(sorted(
            corpus_files.items())), dict(old.manifest.get("moved_paths", {})), duplicates,
            old.manifest.get("corpus_problems", []))
        return _commit(settings, embedder, old, changes, progress, on_progress)


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
    next_row = int(old.manifest.get("next_row", 0)) if old else 0
    written, fresh_rows = [], np.empty(0, np.int64)
    if changes.fresh:
        fresh = _new_segment(changes.fresh, next_row, settings, embedder, progress, on_progress)
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
    manifest = _compatibility(settings, embedder) | {
        "corpus_files": changes.corpus_files,
        "corpus_problems": changes.problems,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "counts": _counts(segments, frozen),
        "segments": [{"name": s.name, "dead": sorted(frozen.get(s.name, ()))} for s in segments],
        "moved_paths": dict(sorted(moved.items())),
        "vector_store": store.kind,
        "next_row": next_row,
        "last_update_seconds": seconds,
        "build_seconds": old.manifest.get("build_seconds") if old else seconds,
    }
    gen = _publish(manifest, segments, written, store, index_dir)
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


def _counts(segments: list[Segment], dead: dict[str, frozenset[str]]) -> dict[str, int]:
    counts = {"articles": 0, "chunks": 0, "sentences": 0}
    for segment in segments:
        alive = segment.alive(dead.get(segment.name, frozenset()))
        counts["articles"] += int(alive.sum())
        counts["chunks"] += int(alive[segment.chunk_article].sum())
        counts["sentences"] += int(alive[segment.sentence_article].sum())
    return counts


@dataclass(frozen=True)
class _Fresh:
    segment: Segment
    vectors: np.ndarray  # chunk vectors, for the vector store


def _new_segment(articles: list[Article], first_row: int, settings: Settings,
                 embedder: Embedder, progress: bool, on_progress: Progress | None) -> _Fresh:
    """Chunk, embed and tokenise new articles into a segment (not yet written)."""
    chunks = chunk_articles(articles, embedder.count_tokens, settings.chunk_tokens,
                            settings.chunk_overlap)
    number = {a.id: i for i, a in enumerate(articles)}
    spans = [(number[a.id], s, e) for a in articles for s, e in frtext.split_sentences(a.text)]
    sentences = [articles[i].text[s:e] for i, s, e in spans]
    vectors = _encode(embedder, [c.text for c in chunks], sentences, progress, on_progress)
    titles = {a.id: a.title for a in articles}
    segment = Segment(
        name=_segment_name(), articles=tuple(articles),
        content_hashes=tuple(article_hash(a) for a in articles),
        text_hashes=tuple(text_hash(a.text) for a in articles),
        chunk_article=np.array([number[c.article_id] for c in chunks], dtype=np.int32),
        chunk_start=np.array([c.start for c in chunks], dtype=np.int32),
        chunk_end=np.array([c.end for c in chunks], dtype=np.int32),
        chunk_ids=np.array([c.id for c in chunks], dtype=str),
        chunk_rows=np.arange(first_row, first_row + len(chunks), dtype=np.int64),
        sentence_article=np.array([i for i, _, _ in spans], dtype=np.int32),
        sentence_start=np.array([s for _, s, _ in spans], dtype=np.int32),
        sentence_end=np.array([e for _, _, e in spans], dtype=np.int32),
        sentence_vectors=vectors[len(chunks):].astype(np.float16),
        # BM25 sees the title with every chunk of its article: a passage deep in an
        # article often never names its subject, and questions do (PIAF BM25 recall@1
        # 0.682 → 0.704). The dense side does better without it (0.651 → 0.647 with it).
        chunk_terms=Postings.build(frtext.bm25_tokenize(
            f"{titles[c.article_id]} {c.text}" for c in chunks)),
        sentence_terms=Postings.build(frtext.bm25_tokenize(sentences)),
    )
    return _Fresh(segment, vectors[:len(chunks)])


def _encode(embedder: Embedder, chunks: list[str], sentences: list[str], progress: bool,
            on_progress: Progress | None) -> np.ndarray:
    """Passage vectors of the chunks then the sentences, in batches that report progress."""
    texts = chunks + sentences
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(texts), desc="Encodage des passages", unit="texte")
    parts = []
    for start in range(0, len(texts), _ENCODE_BATCH):
        batch = texts[start:start + _ENCODE_BATCH]
        parts.append(embedder.encode(batch, "passage"))
        if bar is not None:
            bar.update(len(batch))
        if on_progress is not None:
            on_progress(start + len(batch), len(texts))
    if bar is not None:
        bar.close()
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)


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
            combined = merge(_segment_name(), parts, moved)
            out.insert(group[0], combined)
            created.append(combined)
        for segment, _ in parts:
            dead.pop(segment.name, None)
        segments = out


def _segment_name() -> str:
    return f"seg-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- writing


def _publish(manifest: dict, segments: list[Segment], written: list[Segment],
             store: VectorStore, index_dir: Path) -> Path:
    """Write the new segments and a generation, then repoint `current` in one atomic
    step. Must be called with the write lock held."""
    folder = index_dir / SEGMENTS
    folder.mkdir(parents=True, exist_ok=True)
    for segment in written:
        tmp = folder / f".{segment.name}.tmp"
        segment.write(tmp)
        _fsync_tree(tmp)
        os.rename(tmp, folder / segment.name)
    gen = index_dir / f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = gen.with_name("." + gen.name + ".tmp")
    tmp.mkdir(parents=True)
    store.save(tmp / "dense.faiss")
    _write_manifest(tmp, manifest)
    _fsync_tree(tmp)
    os.rename(tmp, gen)
    link_tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
    os.symlink(gen.name, link_tmp)
    os.replace(link_tmp, index_dir / CURRENT)  # the atomic step
    _remove_stale(index_dir, keep=gen.name, segments={s.name for s in segments})
    return gen


def _write_manifest(folder: Path, manifest: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False),
                                          encoding="utf-8")


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _remove_stale(index_dir: Path, keep: str, segments: set[str]) -> None:
    """Drop old generations, unused segments and leftovers of killed updates.

    A reader that loaded an old generation keeps its open files and arrays; only
    new loads follow `current`."""
    for path in index_dir.iterdir():
        if path.name != keep and path.name.startswith(("gen-", ".gen-")):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(f".{CURRENT}."):
            path.unlink(missing_ok=True)
    for path in (index_dir / SEGMENTS).iterdir():
        if path.name not in segments:
            shutil.rmtree(path, ignore_errors=True)


def load_or_build(settings: Settings, embedder: Embedder, progress: bool = False,
                  rebuild: bool = False, on_progress: Progress | None = None
                  ) -> tuple[Index, UpdateReport | None]:
    """The index of the configured corpus: loaded as is when no corpus file changed,
    else updated from the files that changed, which alone are parsed (all of them
    when the index is rebuilt because the model or chunking changed)."""
    index_dir, corpus_dir = Path(settings.index_dir), Path(settings.corpus_dir)
    saved = read_manifest(index_dir)
    usable = (not rebuild and saved is not None
              and incompatibility(saved, settings, embedder) is None)
    on_disk = corpus_file_hashes(corpus_dir)
    indexed = saved.get("corpus_files", {}) if usable else {}
    if usable and on_disk == indexed:
        try:
            index = load(index_dir)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            log.warning("Index illisible (%s) : reconstruction", exc)
        else:
            _log_problems(saved.get("corpus_problems", []))
            return index, None
    scope = None
    if usable and on_disk:
        scope = {name for name in on_disk.keys() | indexed.keys()
                 if on_disk.get(name) != indexed.get(name)}
    corpus = load_corpus(corpus_dir, only=scope)
    index, report = update(settings, embedder, corpus, progress=progress, rebuild=rebuild,
                           on_progress=on_progress, scope=scope)
    _log_problems(index.manifest.get("corpus_problems", []))
    return index, report


def _log_problems(problems: list[dict]) -> None:
    for problem in problems:
        log.warning("%s", CorpusProblem(**problem))

