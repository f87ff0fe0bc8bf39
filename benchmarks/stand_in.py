"""The stand-in embedder of the developer benchmarks: deterministic unit vectors from
text hashes, behind the same interface as the real `Embedder`.

It exists to isolate the index's own cost: the real model would dominate every timing
(and its cost is proportional to the new texts only, since unchanged articles are never
re-embedded), so with it a benchmark times chunking, BM25, the vector store and the
segment files alone. Its vectors carry no meaning: recall measured with it means nothing.
"""

from __future__ import annotations

import hashlib

import numpy as np


class HashEmbedder:
    """Deterministic unit vectors from text hashes: no model, same interface."""

    name = fingerprint = "hash-embedder"
    dim = 384
    max_tokens = 512

    def encode(self, texts: list[str], kind: str, progress: bool = False) -> np.ndarray:
        out = np.empty((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            digest = hashlib.blake2b(f"{kind}:{text}".encode(), digest_size=8).digest()
            seed = int.from_bytes(digest, "big")  # the 3.11 default, spelled out for 3.10
            out[i] = np.random.default_rng(seed).standard_normal(self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 4
