"""The manifest of an index generation: a typed, versioned record, read and written here only.

`manifest.json` says what a generation holds (segments in use and the articles each
no longer serves, counts, the vector store's kind), what it was built with (format,
model and weights fingerprint, chunking: its `Shape`, whose change means a rebuild)
and what it was built from (the sha256 of every corpus file, the problems met, renamed
files), so that start-up can tell in one read whether the corpus changed. Nobody else
parses its JSON: the rest of the package reads these dataclasses.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from qa.config import Settings
from qa.corpus import CorpusProblem
from qa.embeddings import Embedder
from qa.errors import IndexMismatch

# The JSON layout's version; a reader refuses any other, and the writer rebuilds.
FORMAT = "qa-index/5"
FILE_NAME = "manifest.json"


@dataclass(frozen=True)
class Embedding:
    model: str
    fingerprint: str  # of the weights and tokenizer: same name, other weights → rebuild
    dim: int
    # Where the vectors were computed (QA_BACKEND): int8 or another runtime moves them
    # by up to ~0.005 cosine, enough to reorder near ties, so they are never mixed.
    backend: str = "torch"
    # The recipe of an exported graph (`runtime.EXPORT_VERSION`; 0 in torch): a new
    # quantisation recipe moves the vectors as much as another backend does.
    export: int = 0


@dataclass(frozen=True)
class Chunker:
    chunk_tokens: int
    overlap: int
    length: str = "model tokens"

    @classmethod
    def of(cls, settings: Settings) -> Chunker:
        return cls(settings.chunk_tokens, settings.chunk_overlap)


@dataclass(frozen=True)
class Shape:
    """What an index is built with: vectors and chunks of another shape never mix."""

    embedding: Embedding
    chunker: Chunker
    format: str = FORMAT

    @classmethod
    def of(cls, settings: Settings, embedder: Embedder) -> Shape:
        return cls(Embedding(settings.embedding_model, embedder.fingerprint, embedder.dim,
                             getattr(embedder, "backend", "torch"),
                             getattr(embedder, "export", 0)),
                   Chunker.of(settings))

    def incompatibility(self, saved: Shape) -> str | None:
        """Why an index of shape `saved` cannot be updated into this one, or None."""
        if saved.format != self.format:
            return "format de l'index différent"
        if saved.embedding != self.embedding:
            now = self.embedding
            if replace(saved.embedding, backend=now.backend, export=now.export) == now:
                if saved.embedding.backend == now.backend:
                    return (f"vecteurs d'un export {now.backend} d'une autre recette "
                            f"({saved.embedding.export}, maintenant {now.export})")
                return (f"vecteurs calculés avec QA_BACKEND={saved.embedding.backend}, "
                        f"réglé maintenant sur {now.backend}")
            return "modèle d'embeddings différent"
        if saved.chunker != self.chunker:
            return "réglages de découpage différents"
        return None


@dataclass(frozen=True)
class Counts:
    articles: int = 0
    chunks: int = 0
    sentences: int = 0


@dataclass(frozen=True)
class SegmentEntry:
    """A segment in use, and the ids of the articles it no longer serves."""

    name: str
    dead: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    shape: Shape
    segments: tuple[SegmentEntry, ...] = ()
    counts: Counts = Counts()
    corpus_files: dict[str, str] = field(default_factory=dict)  # corpus key → sha256
    corpus_problems: tuple[CorpusProblem, ...] = ()  # repeated at each start-up
    moved_paths: dict[str, str] = field(default_factory=dict)  # article id → new path
    vector_store: str = ""
    next_row: int = 0  # the next free vector id
    created: str = ""
    last_update_seconds: float = 0.0
    build_seconds: float | None = None

    @property
    def dead(self) -> dict[str, frozenset[str]]:
        return {s.name: frozenset(s.dead) for s in self.segments if s.dead}

    def to_json(self) -> dict:
        data = asdict(self)
        shape = data.pop("shape")
        return {"format": shape["format"], "embedding": shape["embedding"],
                "chunker": shape["chunker"], **data}

    @classmethod
    def from_json(cls, data: dict) -> Manifest:
        """The manifest of a JSON object; `IndexMismatch` for another format or a broken one."""
        if data.get("format") != FORMAT:
            raise IndexMismatch(f"format d'index {data.get('format')!r} au lieu de {FORMAT!r}")
        try:
            return cls(
                shape=Shape(Embedding(**data["embedding"]), Chunker(**data["chunker"])),
                segments=tuple(SegmentEntry(s["name"], tuple(s["dead"]))
                               for s in data["segments"]),
                counts=Counts(**data["counts"]),
                corpus_files=dict(data["corpus_files"]),
                corpus_problems=tuple(CorpusProblem(**p) for p in data["corpus_problems"]),
                moved_paths=dict(data["moved_paths"]),
                vector_store=data["vector_store"], next_row=int(data["next_row"]),
                created=data["created"], last_update_seconds=data["last_update_seconds"],
                build_seconds=data["build_seconds"],
            )
        except (KeyError, TypeError) as exc:
            raise IndexMismatch(f"manifeste incomplet ou illisible ({exc!r})") from exc

    def write(self, folder: Path) -> None:
        (folder / FILE_NAME).write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False),
                                        encoding="utf-8")


def read(folder: Path) -> Manifest | None:
    """The manifest of a generation folder; None when it has none or cannot be read.
    `IndexMismatch` when it was written in another format."""
    try:
        data = json.loads((folder / FILE_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return Manifest.from_json(data)
