"""Building, updating, saving and loading the index folder.

Layout of `index/` (plain files, no pickle):

    index/current -> gen-<time>-<id>/     symlink, swapped atomically after each update
    index/gen-…/manifest.json             format, model + weights fingerprint, chunker
                                          settings, sha256 of every corpus file, counts
    index/gen-…/articles.jsonl            article metadata, clean text and content hash
    index/gen-…/chunks.jsonl              chunk id, vector row id, article id, start, end
    index/gen-…/bm25_tokens.jsonl         French stems of each chunk (reused by updates)
    index/gen-…/sentences.jsonl + .npy    sentence spans and their embeddings (float16)
    index/gen-…/dense.faiss               chunk vectors (see `vector_store`)
    index/gen-…/bm25/                     bm25s index over the stems

Updates are incremental: articles are compared by content hash, and only new or
changed ones are chunked and embedded; removed ones leave the vectors, BM25 and
metadata. Every update writes a new generation under a lock and only then repoints
`current`, so a process killed at any moment leaves the old or the new state, and
the next run finishes the job. Searching lives in `retrieval`.
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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import text as frtext
from .chunking import chunk_articles
from .config import Settings
from .corpus import CorpusLoad, load_corpus
from .embeddings import Embedder
from .errors import IndexLocked, IndexMismatch, IndexNotBuilt
from .schema import Article, Chunk
from .vector_store import VectorStore

log = logging.getLogger(__name__)

FORMAT = "qa-index/4"
_CURRENT = "current"
_LOCK_WAIT_SECONDS = 60.0


@dataclass
class Index:
    """A loaded index: the state every search reads."""

    path: Path
    manifest: dict
    articles: dict[str, Article]
    article_hashes: dict[str, str]
    chunks: list[Chunk]
    chunk_rows: np.ndarray  # the vector store's id of each chunk
    store: VectorStore
    bm25: object  # bm25s.BM25 over `chunks`, in the same order
    sentence_spans: list[tuple[str, int, int]]
    sentence_vectors: np.ndarray
    _position_of_row: dict[int, int] = field(default_factory=dict, repr=False)
    _by_article: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._position_of_row = {int(r): i for i, r in enumerate(self.chunk_rows)}
        for i, (article_id, _, _) in enumerate(self.sentence_spans):
            self._by_article.setdefault(article_id, []).append(i)

    @property
    def n_chunks(self) -> int:
        return len(self.chunks)

    def chunk_position(self, row: int) -> int | None:
        """Position in `chunks` of the chunk stored under vector id `row`."""
        return self._position_of_row.get(int(row))

    def sentences_in(self, chunk: Chunk) -> list[int]:
        """Positions of the sentences that lie in `chunk` or overlap its edges."""
        spans = self.sentence_spans
        return [
            i
            for i in self._by_article.get(chunk.article_id, ())
            if spans[i][1] < chunk.end and spans[i][2] > chunk.start
        ]

    def sentence_text(self, position: int) -> str:
        article_id, start, end = self.sentence_spans[position]
        return self.articles[article_id].text[start:end]


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


def read_manifest(index_dir: Path) -> dict | None:
    try:
        return json.loads((Path(index_dir) / _CURRENT / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
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


@dataclass
class _Parts:
    """The pieces of an index generation while it is being assembled."""

    articles: list[Article]
    hashes: dict[str, str]
    chunks: list[Chunk]
    rows: list[int]
    tokens: list[list[str]]
    spans: list[tuple[str, int, int]]
    sentence_vectors: list[np.ndarray]
    store: VectorStore
    next_row: int


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
            dropped.append(f"{article.path or article.id} : même contenu que l'article "
                           f"« {first.id} » ({first.path}) — ignoré")
    return kept, dropped


def update(settings: Settings, embedder: Embedder, corpus: CorpusLoad, progress: bool = False,
           rebuild: bool = False) -> tuple[Index, UpdateReport]:
    """Bring the index in line with `corpus`, embedding only new or changed articles."""
    started = time.perf_counter()
    index_dir = Path(settings.index_dir)
    with write_lock(index_dir):
        old = None if rebuild else _load_updatable(settings, embedder)
        articles, duplicates = deduplicate(corpus.articles, old.articles if old else ())
        for message in duplicates:
            log.warning("%s", message)
        wanted = {a.id: a for a in articles}
        hashes = {a.id: article_hash(a) for a in articles}
        parts = _kept_parts(old, wanted, hashes, embedder.dim)
        kept_ids = {a.id for a in parts.articles}
        fresh = [a for a in articles if a.id not in kept_ids]
        embedded = _add_articles(parts, fresh, hashes, settings, embedder, progress)
        old_ids = set(old.articles) if old else set()
        report = UpdateReport(
            added=tuple(a.id for a in fresh if a.id not in old_ids),
            updated=tuple(a.id for a in fresh if a.id in old_ids),
            removed=tuple(sorted(old_ids - set(wanted))),
            unchanged=len(kept_ids), duplicates=tuple(duplicates), embedded_chunks=embedded,
            rebuilt=old is None,
        )
        manifest = _compatibility(settings, embedder) | {
            "corpus_files": dict(sorted(corpus.file_hashes.items())),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "counts": {"articles": len(parts.articles), "chunks": len(parts.chunks),
                       "sentences": len(parts.spans)},
            "vector_store": parts.store.kind,
            "next_row": parts.next_row,
            "last_update_seconds": round(time.perf_counter() - started, 3),
        }
        if old is None:
            manifest["build_seconds"] = manifest["last_update_seconds"]
        else:
            manifest["build_seconds"] = old.manifest.get("build_seconds")
        gen = _publish(parts, manifest, index_dir)
    report = UpdateReport(**{**report.__dict__, "seconds": round(time.perf_counter() - started, 3)})
    return load(index_dir, expected_path=gen), report


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


def _kept_parts(old: Index | None, wanted: dict[str, Article], hashes: dict[str, str],
                dim: int) -> _Parts:
    """The old index minus removed and changed articles (their vectors leave the store)."""
    if old is None:
        return _Parts([], {}, [], [], [], [], [], VectorStore.create(dim), 0)
    keep = {aid for aid, h in old.article_hashes.items() if hashes.get(aid) == h}
    # Metadata-only fields like the file path may move without re-embedding.
    articles = [wanted[aid] for aid in old.articles if aid in keep]
    tokens = _read_tokens(old.path)
    positions = [i for i, c in enumerate(old.chunks) if c.article_id in keep]
    gone = np.array([old.chunk_rows[i] for i, c in enumerate(old.chunks)
                     if c.article_id not in keep], dtype=np.int64)
    store = old.store
    if len(gone):
        store.remove(gone)
    sentence_pos = [i for i, span in enumerate(old.sentence_spans) if span[0] in keep]
    return _Parts(
        articles=articles, hashes={aid: old.article_hashes[aid] for aid in keep},
        chunks=[old.chunks[i] for i in positions],
        rows=[int(old.chunk_rows[i]) for i in positions],
        tokens=[tokens[i] for i in positions],
        spans=[old.sentence_spans[i] for i in sentence_pos],
        sentence_vectors=[np.asarray(old.sentence_vectors[sentence_pos], dtype=np.float16)],
        store=store, next_row=int(old.manifest.get("next_row", len(old.chunks))),
    )


def _add_articles(parts: _Parts, articles: list[Article], hashes: dict[str, str],
                  settings: Settings, embedder: Embedder, progress: bool) -> int:
    if not articles:
        return 0
    chunks = chunk_articles(articles, embedder.count_tokens, settings.chunk_tokens,
                            settings.chunk_overlap)
    vectors = embedder.encode([c.text for c in chunks], "passage", progress=progress)
    rows = list(range(parts.next_row, parts.next_row + len(chunks)))
    if chunks:
        parts.store.add(np.array(rows, dtype=np.int64), vectors)
    spans = [(a.id, s, e) for a in articles for s, e in frtext.split_sentences(a.text)]
    texts = {a.id: a.text for a in articles}
    sentence_vectors = embedder.encode([texts[a][s:e] for a, s, e in spans], "passage",
                                       progress=progress)
    parts.articles += articles
    parts.hashes.update({a.id: hashes[a.id] for a in articles})
    parts.chunks += chunks
    parts.rows += rows
    # BM25 sees the title with every chunk of its article: a passage deep in an article
    # often never names its subject, and questions do (PIAF BM25 recall@1 0.682 → 0.704).
    # The dense side does better without it (0.651 → 0.647 with it).
    titles = {a.id: a.title for a in articles}
    parts.tokens += frtext.bm25_tokenize(f"{titles[c.article_id]} {c.text}" for c in chunks)
    parts.spans += spans
    parts.sentence_vectors.append(sentence_vectors.astype(np.float16))
    parts.next_row += len(chunks)
    return len(chunks)


def _bm25_index(tokens: list[list[str]]):
    import bm25s

    bm25 = bm25s.BM25()
    # bm25s cannot index a document without tokens; a lone marker keeps positions aligned.
    bm25.index([t or ["\x00"] for t in tokens] or [["\x00"]], show_progress=False)
    return bm25


# ---------------------------------------------------------------- writing


def _publish(parts: _Parts, manifest: dict, index_dir: Path) -> Path:
    """Write a new generation, then repoint `current` to it in one atomic step.

    Must be called with the write lock held."""
    gen = index_dir / f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = gen.with_name("." + gen.name + ".tmp")
    tmp.mkdir(parents=True)
    _write_jsonl(tmp / "articles.jsonl", (
        a.meta() | {"text": a.text, "content_sha256": parts.hashes[a.id]} for a in parts.articles))
    _write_jsonl(tmp / "chunks.jsonl", (
        {"id": c.id, "row": r, "article_id": c.article_id, "start": c.start, "end": c.end}
        for c, r in zip(parts.chunks, parts.rows, strict=True)))
    _write_jsonl(tmp / "bm25_tokens.jsonl", parts.tokens)
    _write_jsonl(tmp / "sentences.jsonl", (
        {"article_id": a, "start": s, "end": e} for a, s, e in parts.spans))
    vectors = [v for v in parts.sentence_vectors if len(v)]
    sentence_vectors = (np.concatenate(vectors) if vectors
                        else np.zeros((0, parts.store.dim), np.float16))
    np.save(tmp / "sentences.npy", sentence_vectors, allow_pickle=False)
    parts.store.save(tmp / "dense.faiss")
    _bm25_index(parts.tokens).save(str(tmp / "bm25"), show_progress=False)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False),
                                       encoding="utf-8")
    _fsync_tree(tmp)
    os.rename(tmp, gen)
    link_tmp = index_dir / f".{_CURRENT}.{uuid.uuid4().hex[:8]}"
    os.symlink(gen.name, link_tmp)
    os.replace(link_tmp, index_dir / _CURRENT)  # the atomic step
    _remove_stale_generations(index_dir, keep=gen.name)
    return gen


def _write_jsonl(path: Path, rows: Iterable) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _remove_stale_generations(index_dir: Path, keep: str) -> None:
    """Drop old generations and leftovers of killed updates (`.gen-*.tmp`).

    A reader that loaded an old generation keeps its open files and arrays; only
    new loads follow `current`."""
    for path in index_dir.iterdir():
        if path.name != keep and path.name.startswith(("gen-", ".gen-")):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(f".{_CURRENT}."):
            path.unlink(missing_ok=True)


# ---------------------------------------------------------------- loading


def load(index_dir: Path, expected_path: Path | None = None) -> Index:
    """Load the published index; `IndexNotBuilt` when there is none."""
    import bm25s

    manifest = read_manifest(index_dir)
    if manifest is None:
        raise IndexNotBuilt(f"Aucun index dans {index_dir} : lancez `qa index`.")
    if manifest.get("format") != FORMAT:
        raise IndexMismatch(f"L'index {index_dir} a le format {manifest.get('format')!r} "
                            f"au lieu de {FORMAT!r} : relancez `qa index`.")
    gen = expected_path or (Path(index_dir) / _CURRENT).resolve()
    articles, hashes = {}, {}
    for row in _read_jsonl(gen / "articles.jsonl"):
        hashes[row["id"]] = row.pop("content_sha256")
        articles[row["id"]] = Article(**row)
    rows, chunks = [], []
    for r in _read_jsonl(gen / "chunks.jsonl"):
        text = articles[r["article_id"]].text[r["start"]:r["end"]]
        chunks.append(Chunk(r["id"], r["article_id"], r["start"], r["end"], text))
        rows.append(r["row"])
    spans = [(r["article_id"], r["start"], r["end"]) for r in _read_jsonl(gen / "sentences.jsonl")]
    return Index(
        path=gen, manifest=manifest, articles=articles, article_hashes=hashes, chunks=chunks,
        chunk_rows=np.array(rows, dtype=np.int64), store=VectorStore.load(gen / "dense.faiss"),
        bm25=bm25s.BM25.load(str(gen / "bm25"), show_progress=False), sentence_spans=spans,
        # Memory-mapped: a large corpus's sentence vectors stay on disk until read.
        sentence_vectors=np.load(gen / "sentences.npy", mmap_mode="r", allow_pickle=False),
    )


def _read_jsonl(path: Path) -> Iterator:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _read_tokens(gen: Path) -> list[list[str]]:
    return list(_read_jsonl(gen / "bm25_tokens.jsonl"))


def load_or_build(settings: Settings, embedder: Embedder, progress: bool = False,
                  rebuild: bool = False) -> tuple[Index, UpdateReport | None]:
    """The index of the configured corpus: loaded as is when nothing changed,
    else updated incrementally (or rebuilt when the model or chunking changed)."""
    corpus = load_corpus(Path(settings.corpus_dir))
    for problem in corpus.problems:
        log.warning("%s", problem)
    saved = read_manifest(Path(settings.index_dir))
    up_to_date = (
        not rebuild and saved is not None
        and incompatibility(saved, settings, embedder) is None
        and saved.get("corpus_files") == dict(sorted(corpus.file_hashes.items()))
    )
    if up_to_date:
        try:
            return load(Path(settings.index_dir)), None
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            log.warning("Index illisible (%s) : reconstruction", exc)
    return update(settings, embedder, corpus, progress=progress, rebuild=rebuild)
