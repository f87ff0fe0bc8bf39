"""Chunk vectors in FAISS, addressed by the caller's int64 ids (exact search).

Interim version (exact inner-product search only) while the size-dependent
structure is being measured; the API is the final one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class VectorStore:
    """One FAISS index of normalised vectors with stable int64 ids."""

    def __init__(self, index):
        self.index = index

    @classmethod
    def create(cls, dim: int) -> VectorStore:
        import faiss

        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @property
    def dim(self) -> int:
        return self.index.d

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    @property
    def kind(self) -> str:
        return "flat"

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        import faiss

        return self.index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, np.int64)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path) -> VectorStore:
        import faiss

        return cls(faiss.read_index(str(path)))
