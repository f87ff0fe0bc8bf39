"""Updates of the index in Qdrant: the local writer's decisions, mapped onto the engine.

What to do is decided as for the local store (`qa.index.writer._changes`: content
hashes, deduplication, scope of the changed files); how it is done:

- A full rebuild (first build, `--rebuild`, another model or chunking) fills a new
  collection `<alias>-<time>`, writes its state point, then switches the alias in one
  atomic operation and drops the old collection: readers never see a half-built index.
  Collections left by an interrupted rebuild are dropped by the next one.
- An incremental update writes, batch by batch, the new chunks and sentences of each
  new or changed article (deterministic ids), then its article point, whose content
  hash makes them live, then deletes the article's older chunks and sentences (payload
  filter on `article_id`, indexed). A removal deletes the article point first. The
  articles touched are recorded in the state point first (`pending`), and the state
  (corpus file hashes, counts) is written last.

A process killed at any moment thus leaves articles either in their old or their new
version; running the command again compares hashes anew, redoes only what was not
committed (the same ids are overwritten), and sweeps the leftovers of `pending`.
Writers are serialised by the index folder's lock, as for the local store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.config import Settings
from qa.corpus import CorpusLoad, corpus_file_hashes, load_corpus
from qa.embeddings.embedder import Embedder
from qa.errors import IndexMismatch, IndexNotBuilt
from qa.index.chunking import chunk_articles
from qa.index.fresh import Progress, article_hash, new_segment
from qa.index.manifest import Counts, Manifest, Shape
from qa.index.publish import write_lock
from qa.index.qdrant import engine as eng
from qa.index.qdrant.engine import ARTICLE, CHUNK, SENTENCE_KIND, STATE, STATE_ID, qm
from qa.index.qdrant.points import (
    article_point_id,
    article_points,
    content_points,
    document_terms,
)
from qa.index.qdrant.view import QdrantIndex
from qa.index.writer import (
    Changes,
    UpdateReport,
    _changes,
    _log_problems,
    catch_up,
    requested_changes,
)
from qa.schema import Article

log = logging.getLogger(__name__)

BATCH_ARTICLES = 32  # articles embedded and committed together
_UPSERT_POINTS = 256


@dataclass(frozen=True)
class State:
    manifest: Manifest
    avgdl: float
    pending: tuple[str, ...] = ()


# ---------------------------------------------------------------- engine writes
# Every write goes through these two functions (the kill drill stops a process in them).


def _upsert(engine: eng.Engine, collection: str, points: list) -> None:
    for start in range(0, len(points), _UPSERT_POINTS):
        with engine.serial():
            engine.client.upsert(collection, points[start:start + _UPSERT_POINTS], wait=True)


def _delete(engine: eng.Engine, collection: str, selector) -> None:
    with engine.serial():
        engine.client.delete(collection, points_selector=selector, wait=True)


def _write_state(engine: eng.Engine, collection: str, state: State) -> None:
    _upsert(engine, collection, [qm.PointStruct(id=STATE_ID, vector={}, payload={
        "kind": STATE, "manifest": state.manifest.to_json(), "avgdl": state.avgdl,
        "pending": list(state.pending)})])


def _of_articles(ids: Sequence[str]) -> qm.FieldCondition:
    return qm.FieldCondition(key="article_id", match=qm.MatchAny(any=list(ids)))


# ---------------------------------------------------------------- reading the state


def read_state(engine: eng.Engine, alias: str) -> State | None:
    """The state point behind `alias`; None without one. `IndexMismatch` for a state
    written in another format."""
    if eng.aliased(engine, alias) is None:
        return None
    with engine.serial():
        found = engine.client.retrieve(alias, [STATE_ID], with_payload=True)
    if not found:
        return None
    payload = found[0].payload
    return State(Manifest.from_json(payload["manifest"]), float(payload["avgdl"]),
                 tuple(payload.get("pending", ())))


def load(settings: Settings) -> QdrantIndex:
    """The index behind the configured alias; `IndexNotBuilt` when there is none."""
    engine = eng.engine_for(settings)
    try:
        state = read_state(engine, settings.qdrant_collection)
    except IndexMismatch as exc:
        raise IndexMismatch(f"La collection Qdrant « {settings.qdrant_collection} » est d'un "
                            f"autre format ({exc}) : relancez `qa index`.") from exc
    if state is None:
        raise IndexNotBuilt(f"Aucun index dans la collection Qdrant « "
                            f"{settings.qdrant_collection} » ({engine.where}) : lancez "
                            "`qa index`.")
    return QdrantIndex(engine, settings.qdrant_collection, state.manifest, state.avgdl)


def _load_updatable(settings: Settings, embedder: Embedder) -> tuple[QdrantIndex | None,
                                                                        State | None]:
    engine = eng.engine_for(settings)
    try:
        state = read_state(engine, settings.qdrant_collection)
    except IndexMismatch as exc:
        log.info("Reconstruction complète de l'index : %s", exc)
        return None, None
    if state is None:
        return None, None
    reason = Shape.of(settings, embedder).incompatibility(state.manifest.shape)
    if reason:
        log.info("Reconstruction complète de l'index : %s", reason)
        return None, None
    return QdrantIndex(engine, settings.qdrant_collection, state.manifest, state.avgdl), state


# ---------------------------------------------------------------- entry points


def load_or_build(settings: Settings, embedder: Embedder, progress: bool = False,
                  rebuild: bool = False, on_progress: Progress | None = None
                  ) -> tuple[QdrantIndex, UpdateReport | None]:
    """As `qa.index.writer.load_or_build`, for the Qdrant store."""
    corpus_dir = Path(settings.corpus_dir)
    engine = eng.engine_for(settings)
    try:
        saved = None if rebuild else read_state(engine, settings.qdrant_collection)
    except IndexMismatch:
        saved = None
    usable = (saved is not None and Shape.of(settings, embedder).incompatibility(
        saved.manifest.shape) is None)
    if usable and not corpus_dir.exists():
        # A read replica (docs/deploy.md): no corpus folder of its own, the index is
        # served as the writer left it. An empty folder still means "no articles".
        log.info("Pas de dossier %s : index Qdrant servi tel quel (réplique de lecture)",
                 corpus_dir)
        return QdrantIndex(engine, settings.qdrant_collection, saved.manifest,
                           saved.avgdl), None
    on_disk = corpus_file_hashes(corpus_dir)
    indexed = saved.manifest.corpus_files if usable else {}
    if usable and on_disk == indexed and not saved.pending:
        _log_problems(saved.manifest.corpus_problems)
        return QdrantIndex(engine, settings.qdrant_collection, saved.manifest,
                           saved.avgdl), None
    return catch_up(update, settings, embedder, on_disk, indexed if usable else None,
                    progress=progress, rebuild=rebuild, on_progress=on_progress)


def update(settings: Settings, embedder: Embedder, corpus: CorpusLoad, progress: bool = False,
           rebuild: bool = False, on_progress: Progress | None = None,
           scope: Collection[str] | None = None) -> tuple[QdrantIndex, UpdateReport]:
    """As `qa.index.writer.update`, for the Qdrant store."""
    with write_lock(Path(settings.index_dir)):
        old, state = (None, None) if rebuild else _load_updatable(settings, embedder)
        if old is None and scope is not None:
            corpus, scope = load_corpus(Path(settings.corpus_dir)), None
        changes = _changes(old, corpus, scope)
        for message in changes.duplicates:
            log.warning("%s", message)
        return _commit(settings, embedder, old, state, changes, progress, on_progress)


def apply_changes(settings: Settings, embedder: Embedder, add: Sequence[Article] = (),
                  remove: Sequence[str] = (), files: dict[str, str | None] | None = None,
                  progress: bool = False, on_progress: Progress | None = None,
                  base: object = None) -> tuple[QdrantIndex, UpdateReport]:
    """As `qa.index.writer.apply_changes`, for the Qdrant store (`base` is not needed:
    the engine is read directly)."""
    with write_lock(Path(settings.index_dir)):
        old, state = _load_updatable(settings, embedder)
        if old is None:
            raise IndexNotBuilt("Aucun index à mettre à jour : lancez `qa index`.")
        changes = requested_changes(old, add, remove, files, {})
        return _commit(settings, embedder, old, state, changes, progress, on_progress)


# ---------------------------------------------------------------- the commit


def _commit(settings: Settings, embedder: Embedder, old: QdrantIndex | None,
            state: State | None, changes: Changes, progress: bool,
            on_progress: Progress | None) -> tuple[QdrantIndex, UpdateReport]:
    started = time.perf_counter()
    engine, alias = eng.engine_for(settings), settings.qdrant_collection
    known = old.article_hashes if old else {}
    replaced = [a.id for a in changes.fresh if a.id in known]
    if old is None:
        for leftover in eng.leftovers(engine, alias):
            log.info("Collection Qdrant %s abandonnée par une reconstruction : supprimée",
                     leftover)
            eng.drop(engine, leftover)
        target = eng.new_collection(engine, alias, embedder.dim, eng.cluster_layout(settings))
        avgdl = _mean_chunk_length(changes.fresh, settings, embedder)
    else:
        target, avgdl = alias, state.avgdl
        pending = sorted({*state.pending, *changes.gone, *(a.id for a in changes.fresh)})
        _write_state(engine, target, State(old.manifest, avgdl, tuple(pending)))
        _sweep(engine, target, state.pending)
        if changes.gone:  # the article point first: its chunks stop being live with it
            _delete(engine, target, qm.PointIdsList(
                points=[article_point_id(a) for a in changes.gone]))
            _delete(engine, target, qm.FilterSelector(filter=qm.Filter(
                must=[_of_articles(changes.gone)])))
    embedded = _write_articles(engine, target, alias, changes.fresh, avgdl, settings, embedder,
                               progress, on_progress)
    moved = {aid: path for aid, path in changes.moved_paths.items()
             if aid in known and aid not in changes.gone and aid not in replaced}
    for aid, path in moved.items():
        with engine.serial():
            engine.client.set_payload(target, {"path": path}, points=[article_point_id(aid)],
                                      wait=True)
    counts = Counts(*(eng.count(engine, target, eng.kind_is(k))
                      for k in (ARTICLE, CHUNK, SENTENCE_KIND)))
    seconds = round(time.perf_counter() - started, 3)
    manifest = Manifest(
        shape=Shape.of(settings, embedder), counts=counts, corpus_files=changes.corpus_files,
        corpus_problems=tuple(changes.problems), vector_store="qdrant",
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), last_update_seconds=seconds,
        build_seconds=old.manifest.build_seconds if old else seconds)
    _write_state(engine, target, State(manifest, avgdl))
    if old is None:
        previous = eng.switch_alias(engine, alias, target)
        if previous is not None:
            eng.drop(engine, previous)
    report = UpdateReport(
        added=tuple(a.id for a in changes.fresh if a.id not in known),
        updated=tuple(replaced), removed=tuple(changes.gone),
        unchanged=len(known) - len(changes.gone) - len(replaced),
        duplicates=tuple(changes.duplicates), embedded_chunks=embedded,
        seconds=round(time.perf_counter() - started, 3), rebuilt=old is None)
    return QdrantIndex(engine, alias, manifest, avgdl), report


def _mean_chunk_length(articles: list[Article], settings: Settings,
                       embedder: Embedder) -> float:
    """Mean BM25 length of the chunks of a full build (chunking twice costs little next
    to embedding, and the sparse vectors of the first batch need the mean)."""
    by_id = {a.id: a for a in articles}
    chunks = chunk_articles(articles, embedder.count_tokens, settings.chunk_tokens,
                            settings.chunk_overlap)
    lengths = [len(document_terms(by_id[c.article_id], c.text)) for c in chunks]
    return sum(lengths) / len(lengths) if lengths else 1.0


def _write_articles(engine: eng.Engine, target: str, alias: str, articles: list[Article],
                    avgdl: float, settings: Settings, embedder: Embedder, progress: bool,
                    on_progress: Progress | None) -> int:
    """Embed and commit `articles` batch by batch; returns the chunks embedded."""
    bar = None
    if progress and articles:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(articles), desc="Encodage des articles", unit="article")
    embedded = 0
    for start in range(0, len(articles), BATCH_ARTICLES):
        batch = articles[start:start + BATCH_ARTICLES]
        fresh = new_segment(batch, 0, settings, embedder, False,
                            _batch_progress(on_progress, start, len(batch), len(articles)))
        _upsert(engine, target, content_points(fresh, avgdl))
        _upsert(engine, target, article_points(fresh))  # commits: the chunks are now live
        if target == alias:  # a new collection holds no older versions to sweep
            _delete(engine, target, qm.FilterSelector(filter=qm.Filter(should=[
                qm.Filter(must=[_of_articles([a.id])], must_not=[qm.FieldCondition(
                    key="article_hash", match=qm.MatchValue(value=article_hash(a)))])
                for a in batch])))
        embedded += fresh.segment.n_chunks
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return embedded


def _batch_progress(on_progress: Progress | None, done: int, size: int,
                    total: int) -> Progress | None:
    """Progress in articles, pro rata of the texts embedded in the current batch."""
    if on_progress is None:
        return None
    return lambda texts_done, texts: on_progress(done + round(size * texts_done
                                                              / max(texts, 1)), total)


def _sweep(engine: eng.Engine, target: str, pending: Sequence[str]) -> None:
    """Delete what an interrupted update left of `pending` articles: chunks and
    sentences of another version than the committed one, or of a removed article."""
    if not pending:
        return
    with engine.serial():
        records = engine.client.retrieve(target, [article_point_id(a) for a in pending],
                                         with_payload=["article_id", "article_hash"])
    committed = {r.payload["article_id"]: r.payload["article_hash"] for r in records}
    conditions = [qm.Filter(must=[_of_articles([aid])], must_not=[qm.FieldCondition(
        key="article_hash", match=qm.MatchValue(value=committed[aid]))]) for aid in pending
        if aid in committed]
    gone = [aid for aid in pending if aid not in committed]
    if gone:
        conditions.append(qm.Filter(must=[_of_articles(gone)]))
    _delete(engine, target, qm.FilterSelector(filter=qm.Filter(should=conditions)))
