"""The connection to Qdrant and the collection's schema: the only module that opens one.

One `Engine` per server or local-mode folder and process: the client's local mode
takes an exclusive lock on its folder, so a second client in the same process would
be refused; and local mode is not thread-safe, so its calls go through `Engine.lock`
(a server client is, and the lock is then never taken).

A collection holds four kinds of points (payload `kind`, indexed):

    article    no vector; the article's metadata and text, its content and text hashes,
               its number of chunks. Its content hash is what makes its chunks live.
    chunk      `dense` (e5 vector, cosine) and `bm25` (sparse, IDF modifier: the engine
               counts document frequencies); payload: article id and hash, metadata,
               exact offsets, the spans of the sentences it overlaps.
    sentence   `sentence` (e5 vector, never searched: no HNSW graph); payload: article
               id and hash, offsets, analyzer terms (indexed: the answerer's IDF).
    state      the manifest (`Manifest` JSON), the BM25 length normalisation, and the
               articles an interrupted update was touching.

The name users configure (`QA_QDRANT_COLLECTION`) is an alias; the collection behind
it is `<name>-<time>`, so a full rebuild fills a new one and swaps the alias.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.config import Settings
from qa.errors import SettingsError

try:
    from qdrant_client import QdrantClient
    from qdrant_client import models as qm
except ImportError:  # an optional dependency: `pip install 'qa-fr[qdrant]'`
    QdrantClient = qm = None

INSTALL = "pip install 'qa-fr[qdrant]'  (ou : pip install 'qdrant-client>=1.20')"
DENSE, BM25, SENTENCE = "dense", "bm25", "sentence"
ARTICLE, CHUNK, SENTENCE_KIND, STATE = "article", "chunk", "sentence", "state"
# Deterministic point ids: an update killed half-way and run again overwrites the same
# points instead of adding copies.
NAMESPACE = uuid.UUID("6f1b7a52-2c55-4c1e-9d0e-6a0e1f3f7c11")
STATE_ID = str(uuid.uuid5(NAMESPACE, "state"))
INDEXED_FIELDS = ("kind", "article_id", "article_hash", "terms")


def point_id(*parts: str | int) -> str:
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(str(p) for p in parts)))


@dataclass
class Engine:
    """A Qdrant client, and whether it runs in process (local mode)."""

    client: object
    local: bool
    where: str
    lock: threading.RLock = field(default_factory=threading.RLock)

    @contextlib.contextmanager
    def serial(self) -> Iterator[None]:
        """Local mode's calls one at a time; a server's concurrently."""
        if self.local:
            with self.lock:
                yield
        else:
            yield


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_closing_registered = False


def require_client() -> None:
    if QdrantClient is None:
        raise SettingsError("QA_STORE=qdrant demande le client Qdrant, absent de cet "
                            f"environnement : {INSTALL}")


def local_path(settings: Settings) -> Path:
    return Path(settings.qdrant_path) if settings.qdrant_path else (
        Path(settings.index_dir) / "qdrant")


def engine_for(settings: Settings) -> Engine:
    """The process's client for the configured server or local-mode folder."""
    require_client()
    global _closing_registered
    where = settings.qdrant_url or str(local_path(settings).resolve())
    with _engines_lock:
        if not _closing_registered:  # before the interpreter tears modules down
            atexit.register(close_engines)
            _closing_registered = True
        engine = _engines.get(where)
        if engine is None:
            if settings.qdrant_url:
                client = QdrantClient(url=settings.qdrant_url,
                                      api_key=settings.qdrant_api_key or None, timeout=60)
            else:
                local_path(settings).mkdir(parents=True, exist_ok=True)
                try:
                    client = QdrantClient(path=where)
                except RuntimeError as exc:  # the folder is locked by another process
                    raise SettingsError(
                        f"Le stockage Qdrant local {where} est ouvert par un autre processus "
                        "(le mode local n'admet qu'un processus à la fois) : arrêtez-le, ou "
                        "utilisez un serveur Qdrant (QA_QDRANT_URL).") from exc
            engine = _engines[where] = Engine(client, not settings.qdrant_url, where)
        return engine


def close_engines() -> None:
    """Close every client (local mode then releases its folder for another process)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.client.close()
        _engines.clear()


# ---------------------------------------------------------------- collections


def aliased(engine: Engine, alias: str) -> str | None:
    """The collection the alias points to, or None."""
    with engine.serial():
        for item in engine.client.get_aliases().aliases:
            if item.alias_name == alias:
                return item.collection_name
    return None


def cluster_layout(settings: Settings) -> dict[str, int]:
    """Shards, replicas and write consistency of the collections a build creates."""
    return {"shard_number": settings.qdrant_shards,
            "replication_factor": settings.qdrant_replicas,
            "write_consistency_factor": settings.qdrant_write_consistency}


def new_collection(engine: Engine, alias: str, dim: int,
                   layout: dict[str, int] | None = None) -> str:
    """Create an empty `<alias>-<time>` collection with the schema above."""
    name = f"{alias}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    with engine.serial():
        engine.client.create_collection(
            name, **({} if engine.local else layout or {}),
            vectors_config={
                DENSE: qm.VectorParams(size=dim, distance=qm.Distance.COSINE),
                # Read back by id, never searched: no graph to build.
                SENTENCE: qm.VectorParams(size=dim, distance=qm.Distance.DOT,
                                          hnsw_config=qm.HnswConfigDiff(m=0), on_disk=True),
            },
            sparse_vectors_config={BM25: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
        )
        if not engine.local:  # local mode scans payloads and warns that it ignores indexes
            for name_ in INDEXED_FIELDS:
                engine.client.create_payload_index(name, name_, qm.PayloadSchemaType.KEYWORD,
                                                   wait=True)
    return name


def switch_alias(engine: Engine, alias: str, collection: str) -> str | None:
    """Point `alias` at `collection` in one atomic operation; returns the previous one."""
    previous = aliased(engine, alias)
    operations = []
    if previous is not None:
        operations.append(qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=alias)))
    operations.append(qm.CreateAliasOperation(create_alias=qm.CreateAlias(
        collection_name=collection, alias_name=alias)))
    with engine.serial():
        engine.client.update_collection_aliases(operations)
    return previous


def leftovers(engine: Engine, alias: str) -> list[str]:
    """Collections of this alias's family that it does not point to: rebuilds that were
    interrupted, or the previous collection a finished rebuild did not get to drop."""
    current = aliased(engine, alias)
    with engine.serial():
        names = [c.name for c in engine.client.get_collections().collections]
    return [n for n in names if n.startswith(f"{alias}-") and n != current
            and n[len(alias) + 1:][:1].isdigit()]


def drop(engine: Engine, collection: str) -> None:
    with engine.serial():
        engine.client.delete_collection(collection)


def kind_is(kind: str) -> object:
    return qm.FieldCondition(key="kind", match=qm.MatchValue(value=kind))


def count(engine: Engine, collection: str, *conditions) -> int:
    with engine.serial():
        return engine.client.count(collection, count_filter=qm.Filter(must=list(conditions)),
                                   exact=True).count
