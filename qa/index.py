"""Building, saving and loading the index folder: FAISS + BM25 + chunks + manifest.

Layout of `index/` (all plain files, no pickle):

    index/current -> gen-<time>-<id>/     symlink, swapped atomically after a build
    index/gen-…/manifest.json             format, model + weights fingerprint, chunker
                                          settings, sha256 of every corpus file, counts
    index/gen-…/articles.jsonl            article metadata and clean text
    index/gen-…/chunks.jsonl              chunk id, article id, start, end
    index/gen-…/sentences.jsonl + .npy    sentence spans and their embeddings
    index/gen-…/dense.faiss               normalised chunk vectors (inner product)
    index/gen-…/bm25/                     bm25s index over French stems

A build writes a new generation folder and only then repoints `current`, so a
killed build leaves the previous index whole. Searching lives in `retrieval`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
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

log = logging.getLogger(__name__)

FORMAT = "qa-index/1"
_CURRENT = "current"
_LOCK_WAIT_SECONDS = 30.0


@dataclass
class Index:
    """A loaded index: the state every search reads. Built by `build` or `load`."""

    path: Path
    manifest: dict
    articles: dict[str, Article]
    chunks: list[Chunk]
    dense: object  # faiss.Index
    bm25: object  # bm25s.BM25
    sentence_spans: list[tuple[str, int, int]]
    sentence_vectors: np.ndarray
    _by_article: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for i, (article_id, _, _) in enumerate(self.sentence_spans):
            self._by_article.setdefault(article_id, []).append(i)

    @property
    def n_chunks(self) -> int:
        return len(self.chunks)

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


# ---------------------------------------------------------------- manifest


def expected_manifest(settings: Settings, embedder: Embedder, corpus: CorpusLoad) -> dict:
    """The parts of a manifest that must match for a saved index to be reused."""
    return {
        "format": FORMAT,
        "embedding": {
            "model": settings.embedding_model,
            "fingerprint": embedder.fingerprint,
            "dim": embedder.dim,
        },
        "chunker": {
            "chunk_tokens": settings.chunk_tokens,
            "overlap": settings.chunk_overlap,
            "length": "model tokens",
        },
        "corpus_files": dict(sorted(corpus.file_hashes.items())),
    }


def mismatch(saved: dict, expected: dict) -> str | None:
    """Why a saved manifest cannot be reused, or None when it can."""
    for key in ("format", "embedding", "chunker", "corpus_files"):
        if saved.get(key) != expected[key]:
            return {
                "format": "format de l'index différent",
                "embedding": "modèle d'embeddings différent",
                "chunker": "réglages de découpage différents",
                "corpus_files": "corpus modifié",
            }[key]
    return None


def read_manifest(index_dir: Path) -> dict | None:
    path = Path(index_dir) / _CURRENT / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- building


def build(
    settings: Settings, embedder: Embedder, corpus: CorpusLoad, progress: bool = False
) -> Index:
    """Chunk, embed and index `corpus`, then publish it atomically into `settings.index_dir`."""
    started = time.perf_counter()
    articles = list(corpus.articles)
    chunks = chunk_articles(
        articles, embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap
    )
    chunk_vectors = embedder.encode([c.text for c in chunks], "passage", progress=progress)
    spans = [(a.id, s, e) for a in articles for s, e in frtext.split_sentences(a.text)]
    texts = {a.id: a.text for a in articles}
    sentence_vectors = embedder.encode(
        [texts[a][s:e] for a, s, e in spans], "passage", progress=progress
    )
    manifest = expected_manifest(settings, embedder, corpus) | {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "counts": {"articles": len(articles), "chunks": len(chunks), "sentences": len(spans)},
        "build_seconds": 0.0,
    }
    index = Index(
        Path(settings.index_dir),
        manifest,
        {a.id: a for a in articles},
        chunks,
        _faiss_index(chunk_vectors),
        _bm25_index(chunks),
        spans,
        sentence_vectors,
    )
    manifest["build_seconds"] = round(time.perf_counter() - started, 3)
    index.path = publish(index, Path(settings.index_dir))
    return index


def _faiss_index(vectors: np.ndarray):
    import faiss

    dense = faiss.IndexFlatIP(vectors.shape[1])
    dense.add(vectors)
    return dense


def _bm25_index(chunks: list[Chunk]):
    import bm25s

    bm25 = bm25s.BM25()
    tokens = frtext.bm25_tokenize([c.text for c in chunks])
    # bm25s cannot index a document without tokens; a lone marker keeps ids aligned.
    bm25.index([t or ["\x00"] for t in tokens], show_progress=False)
    return bm25


@contextmanager
def write_lock(index_dir: Path, wait: float = _LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Serialise writers of one index folder across processes."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IndexLocked(
                        f"L'index {index_dir} est en cours d'écriture par un autre processus ; "
                        "réessayez quand il aura fini."
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def publish(index: Index, index_dir: Path) -> Path:
    """Write `index` as a new generation and repoint `current` to it atomically."""
    import faiss

    with write_lock(index_dir):
        gen = index_dir / f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        tmp = gen.with_name("." + gen.name + ".tmp")
        tmp.mkdir(parents=True)
        _write_jsonl(tmp / "articles.jsonl", (_article_row(a) for a in index.articles.values()))
        _write_jsonl(
            tmp / "chunks.jsonl",
            (
                {"id": c.id, "article_id": c.article_id, "start": c.start, "end": c.end}
                for c in index.chunks
            ),
        )
        _write_jsonl(
            tmp / "sentences.jsonl",
            ({"article_id": a, "start": s, "end": e} for a, s, e in index.sentence_spans),
        )
        np.save(tmp / "sentences.npy", index.sentence_vectors, allow_pickle=False)
        faiss.write_index(index.dense, str(tmp / "dense.faiss"))
        index.bm25.save(str(tmp / "bm25"), show_progress=False)
        (tmp / "manifest.json").write_text(
            json.dumps(index.manifest, indent=2, ensure_ascii=False), encoding="utf-8"
        )
        _fsync_tree(tmp)
        os.rename(tmp, gen)
        link_tmp = index_dir / f".{_CURRENT}.{uuid.uuid4().hex[:8]}"
        os.symlink(gen.name, link_tmp)
        os.replace(link_tmp, index_dir / _CURRENT)  # the atomic step
        _remove_stale_generations(index_dir, keep=gen.name)
    return gen


def _article_row(article: Article) -> dict:
    return article.meta() | {"text": article.text}


def _write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _remove_stale_generations(index_dir: Path, keep: str) -> None:
    """Drop old generations and leftovers of killed builds (`.gen-*.tmp`)."""
    for path in index_dir.iterdir():
        if path.name != keep and (path.name.startswith("gen-") or path.name.startswith(".gen-")):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(f".{_CURRENT}."):
            path.unlink(missing_ok=True)


# ---------------------------------------------------------------- loading


def load(index_dir: Path) -> Index:
    """Load the published index; `IndexNotBuilt` when there is none."""
    import bm25s
    import faiss

    current = Path(index_dir) / _CURRENT
    manifest = read_manifest(index_dir)
    if manifest is None:
        raise IndexNotBuilt(f"Aucun index dans {index_dir} : lancez `qa index`.")
    if manifest.get("format") != FORMAT:
        raise IndexMismatch(
            f"L'index {index_dir} a le format {manifest.get('format')!r} "
            f"au lieu de {FORMAT!r} : relancez `qa index`."
        )
    gen = current.resolve()
    articles = {}
    for row in _read_jsonl(gen / "articles.jsonl"):
        articles[row["id"]] = Article(**row)
    chunks = [
        Chunk(
            r["id"],
            r["article_id"],
            r["start"],
            r["end"],
            articles[r["article_id"]].text[r["start"] : r["end"]],
        )
        for r in _read_jsonl(gen / "chunks.jsonl")
    ]
    spans = [(r["article_id"], r["start"], r["end"]) for r in _read_jsonl(gen / "sentences.jsonl")]
    return Index(
        path=gen,
        manifest=manifest,
        articles=articles,
        chunks=chunks,
        dense=faiss.read_index(str(gen / "dense.faiss")),
        bm25=bm25s.BM25.load(str(gen / "bm25"), show_progress=False),
        sentence_spans=spans,
        sentence_vectors=np.load(gen / "sentences.npy", allow_pickle=False),
    )


def _read_jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_or_build(settings: Settings, embedder: Embedder, progress: bool = False) -> Index:
    """The index for the configured corpus: reused when its manifest matches, else rebuilt."""
    corpus = load_corpus(Path(settings.corpus_dir))
    for problem in corpus.problems:
        log.warning("%s", problem)
    saved = read_manifest(Path(settings.index_dir))
    reason = (
        "aucun index"
        if saved is None
        else mismatch(saved, expected_manifest(settings, embedder, corpus))
    )
    if reason is None:
        try:
            return load(Path(settings.index_dir))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            reason = f"index illisible ({exc})"
    log.info("Construction de l'index (%s)", reason)
    return build(settings, embedder, corpus, progress=progress)
