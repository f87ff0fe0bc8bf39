"""Where the encoders run: torch, ONNX Runtime or OpenVINO, in fp32, bf16 or int8.

Owns the backend names (`QA_BACKEND`), the thread count every runtime gets, exporting
a torch module to ONNX once into the cache folder, its dynamic int8 quantisation, and
`Graph`, which runs an exported file. The embedder and the reader both go through it;
neither the exported files nor the quantised ones are ever committed or downloaded:
they are made here from the converted checkpoint, the first time a backend is asked
for, and a stamp beside each file says what it was made from, so a new checkpoint or
new reader weights make a new export instead of reusing a stale one.

The exported graph is traced with eager attention and a padded batch: the SDPA path
of transformers decides from the mask in Python whether padding exists, and a trace
of an unpadded batch would bake "no padding" into the graph.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.config import BACKENDS
from qa.errors import ModelError

log = logging.getLogger(__name__)

_INSTALL = {"onnxruntime": "pip install onnxruntime", "onnx": "pip install onnx",
            "openvino": "pip install openvino", "nncf": "pip install nncf"}
_CALIBRATION = Path(__file__).with_name("calibration_fr.txt")
# Bumped when the export or quantisation recipe changes: older exports are remade.
EXPORT_VERSION = 3
_OPSET = 17
ONE_THREAD_TOKENS = 64
FIXED_TOKENS = 32


@dataclass(frozen=True)
class Backend:
    """A runtime (torch, onnx, openvino) and its precision: fp32, int8 (weights and
    activations quantised), or bf16 (OpenVINO computing in bfloat16 on CPUs with
    AVX512-BF16 or AMX; emulated, and slow, elsewhere)."""

    runtime: str
    precision: str = "fp32"

    @classmethod
    def parse(cls, name: str) -> Backend:
        if name not in BACKENDS:
            raise ValueError(f"backend {name!r}: one of {', '.join(BACKENDS)}")
        runtime, _, precision = name.partition("-")
        return cls(runtime, precision or "fp32")

    @property
    def int8(self) -> bool:
        return self.precision == "int8"

    @property
    def name(self) -> str:
        return self.runtime + ("" if self.precision == "fp32" else f"-{self.precision}")


def threads(requested: int = 0) -> int:
    """Threads for one inference: `requested`, else every core this process may use."""
    if requested > 0:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def require(backend: Backend) -> None:
    """`ModelError` with the install line when a package `backend` needs is missing
    (onnxruntime is optional; the others come with the package, but may be removed)."""
    needed = {"onnx": ["onnxruntime", "onnx"], "openvino": ["openvino", "onnx"]}
    needed = needed.get(backend.runtime, [])
    if backend.int8:  # the int8 graphs are quantised by onnxruntime, or by NNCF for OpenVINO
        needed.append("nncf" if backend.runtime == "openvino" else "onnxruntime")
    for module in needed:
        if not _installed(module):
            raise ModelError(f"Le moteur d'inférence {backend.name} (QA_BACKEND, "
                             f"QA_READER_BACKEND) demande le paquet {module!r}, absent. "
                             f"Installez-le : {_INSTALL[module]}")


def _installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it (NNCF alone takes 2 s,
    and a start that finds its graphs made never needs it)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def calibration_texts() -> tuple[list[str], list[str]]:
    """(passages, questions) of French written for the static int8 quantisation. The
    passages are also joined by 3 and by 6: activation ranges grow with length, and
    articles' chunks are longer than one sentence (with single sentences alone, the
    lowest cosine to fp32 on PIAF texts was 0.987; with the joined ones 0.990)."""
    passages, questions = [], []
    for line in _CALIBRATION.read_text(encoding="utf-8").splitlines():
        kind, _, text = line.partition("\t")
        if kind == "passage":
            passages.append(text)
        elif kind == "question":
            questions.append(text)
    joined = [" ".join(passages[i : i + n]) for n in (3, 6) for i in range(0, len(passages), n)]
    return passages + joined, questions


def stamp_of(*parts: str) -> str:
    """A short digest of what an export is made from."""
    digest = hashlib.sha256(json.dumps([EXPORT_VERSION, *parts]).encode())
    return digest.hexdigest()[:16]


def exported(folder: Path, name: str, stamp: str, export, backend: Backend,
             calibration=None) -> Path:
    """The graph file `name` for `backend` in `folder`, made once: `export(path)`
    writes the fp32 ONNX graph; int8 is quantised from it, by ONNX Runtime (dynamic:
    activations scaled per batch) or by NNCF for OpenVINO (static: activation scales
    measured once on `calibration()`, a list of input feeds). Reused while its stamp
    matches; written beside and renamed, so an interrupted export is simply redone.
    Two processes asking at once (`make run` starts the server while the models are
    being made) make it once: the second waits for the first, then reuses its files."""
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive(folder / f".{name}.lock"):
        return _exported(folder, name, stamp, export, backend, calibration)


@contextlib.contextmanager
def exclusive(path: Path):
    """An advisory lock on `path`, held while the block runs (released if the process
    dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _exported(folder: Path, name: str, stamp: str, export, backend: Backend,
              calibration) -> Path:
    fp32 = folder / f"{name}.onnx"
    if not _is_current(fp32, stamp):
        log.warning("Export ONNX de %s (une seule fois, dans %s)…", name, folder)
        _replace(fp32, stamp, export)
    if not backend.int8:
        return fp32
    if backend.runtime == "openvino":
        target = folder / f"{name}-openvino-int8.xml"
        make = lambda path: _quantise_openvino(fp32, path, calibration())  # noqa: E731
    else:
        target = folder / f"{name}-int8.onnx"
        make = lambda path: _quantise_onnx(fp32, path)  # noqa: E731
    if not _is_current(target, stamp):
        log.warning("Quantification int8 de %s pour %s (une seule fois)…", name, backend.runtime)
        _replace(target, stamp, make)
    return target


def _is_current(path: Path, stamp: str) -> bool:
    stamp_file = path.with_suffix(".stamp")
    return path.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp


def _replace(path: Path, stamp: str, write) -> None:
    work = path.parent / f".{path.stem}.work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        write(work / path.name)
        # The main file last (an OpenVINO .xml after its .bin), then the stamp that
        # says the set is whole.
        for part in sorted(work.iterdir(), key=lambda p: p.name == path.name):
            os.replace(part, path.parent / part.name)
        path.with_suffix(".stamp").write_text(stamp)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def export_onnx(module, sample: Mapping, outputs: Sequence[str], path: Path,
                sequence_outputs: Sequence[str] = ()) -> None:
    """Trace `module(**sample)` (torch tensors, batch × sequence) into an ONNX file
    with dynamic batch and sequence axes."""
    import torch

    inputs = list(sample)
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs}
    for name in outputs:
        axes[name] = {0: "batch", 1: "sequence"} if name in sequence_outputs else {0: "batch"}
    with torch.inference_mode():
        torch.onnx.export(module, tuple(sample[name] for name in inputs), str(path),
                          input_names=inputs, output_names=list(outputs),
                          dynamic_axes=axes, opset_version=_OPSET, dynamo=False)


def _quantise_onnx(source: Path, target: Path) -> None:
    """Dynamic int8: weights per output channel, activations quantised per batch."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), per_channel=True,
                     weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])


def _quantise_openvino(source: Path, target: Path, feeds: list[dict]) -> None:
    """Static int8 by NNCF, its scales measured on `feeds`; transformer patterns
    (softmax, layer norms) stay in floating point. Without NNCF's bias correction,
    which made a third of a first start (embedder: 34 s with it, 22 s without) for
    the same vectors (cosine to fp32 on 64 PIAF contexts: lowest 0.987, median 0.997
    either way). Smooth-quant stays: without it a question padded to the fixed shape
    moved by up to 0.002 cosine."""
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    model = ov.Core().read_model(str(source))
    quantised = nncf.quantize(model, nncf.Dataset(feeds), subset_size=len(feeds),
                              model_type=nncf.ModelType.TRANSFORMER,
                              advanced_parameters=AdvancedQuantizationParameters(
                                  disable_bias_correction=True))
    ov.save_model(quantised, str(target), compress_to_fp16=False)


class Graph:
    """An exported graph, run by ONNX Runtime or OpenVINO on `n_threads` threads.

    A question (one row of few tokens) takes a path of its own, where each runtime is
    fastest on this shared 2-core machine:
    - ONNX Runtime runs an input of at most `ONE_THREAD_TOKENS` tokens on one thread:
      a second thread made a question twice slower (int8: 10.6 ms on 2 threads, 5.3 ms
      on 1), as it did FAISS searches (docs/scale.md);
    - OpenVINO runs one row of at most `FIXED_TOKENS` tokens (97.6 % of PIAF's questions)
      padded to exactly that length, on a copy compiled for that one shape: with
      dynamic shapes a question took 10.4 ms at the median and 27 ms at p95, with the
      fixed shape 6.3-7.3 ms and 8-10 ms (int8), and the same vector (cosine ≥ 0.9998:
      the padding is masked).
    These copies are compiled the first time they are needed.
    """

    def __init__(self, path: Path, runtime: str, n_threads: int, bf16: bool = False,
                 pad_id: int = 0):
        self.path, self.runtime, self.n_threads, self.bf16 = path, runtime, n_threads, bf16
        self.pad_id = pad_id  # the tokenizer's: what fills a question up to FIXED_TOKENS
        self._runners: dict[tuple[int, int], _Runner] = {}
        self._lock = threading.Lock()
        self._runner(n_threads)  # compiled now, so that a broken file shows at start-up

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The graph's outputs by name for int64 `feeds` (batch × tokens)."""
        feeds = {k: np.ascontiguousarray(v, dtype=np.int64) for k, v in feeds.items()}
        rows, tokens = next(iter(feeds.values())).shape
        if self.runtime == "openvino":
            if rows == 1 and tokens <= FIXED_TOKENS:
                return self._fixed(feeds, tokens)
            return self._runner(self.n_threads).run(feeds)
        return self._runner(1 if rows * tokens <= ONE_THREAD_TOKENS else self.n_threads).run(feeds)

    def _fixed(self, feeds: dict[str, np.ndarray], tokens: int) -> dict[str, np.ndarray]:
        padded = {}
        for name, values in feeds.items():
            fill = self.pad_id if name == "input_ids" else 0  # masked, and type 0
            padded[name] = np.pad(values, ((0, 0), (0, FIXED_TOKENS - tokens)),
                                  constant_values=fill)
        runner = self._runner(self.n_threads, FIXED_TOKENS)
        # Per-token outputs come back at the padded length: cut to the question's.
        return {name: out[:, :tokens] if name in runner.sequence_outputs else out
                for name, out in runner.run(padded).items()}

    def _runner(self, n_threads: int, fixed_tokens: int = 0) -> _Runner:
        with self._lock:
            key = (n_threads, fixed_tokens)
            if key not in self._runners:
                self._runners[key] = self._compile(n_threads, fixed_tokens)
            return self._runners[key]

    def _compile(self, n_threads: int, fixed_tokens: int) -> _Runner:
        try:
            if self.runtime == "openvino":
                return _openvino_runner(self.path, n_threads, self.bf16, fixed_tokens)
            return _onnxruntime_runner(self.path, n_threads)
        except Exception as exc:  # the runtimes raise many kinds; all mean "cannot load"
            raise ModelError(f"Impossible de charger {self.path} avec {self.runtime} ({exc}). "
                             "Supprimez ce fichier pour qu'il soit réexporté.") from exc


@dataclass(frozen=True)
class _Runner:
    """A compiled graph: `run(feeds)` gives its outputs by name; `sequence_outputs`
    names those with one value per token."""

    run: Callable[[dict], dict]
    sequence_outputs: frozenset[str] = frozenset()


def _onnxruntime_runner(path: Path, n_threads: int) -> _Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = n_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return _Runner(lambda feeds: dict(zip(names, session.run(names, feeds), strict=True)))


def _openvino_runner(path: Path, n_threads: int, bf16: bool, fixed_tokens: int = 0,
                     ) -> _Runner:
    """`path` compiled for any shape, or for one row of exactly `fixed_tokens`."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    sequence_outputs = frozenset(o.get_any_name() for o in model.outputs
                                 if o.get_partial_shape().rank.get_length() > 1
                                 and o.get_partial_shape()[1].is_dynamic)
    if fixed_tokens:
        model.reshape({i.get_any_name(): [1, fixed_tokens] for i in model.inputs})
    # The precision said outright: on CPUs with bf16 units OpenVINO would choose bf16
    # for "fp32" itself.
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_NUM_THREADS": n_threads, "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32"})
    names = [o.get_any_name() for o in compiled.outputs]
    # One request per thread: a request is not thread-safe (the web app answers two
    # questions at once), and making one per call cost a question 1-2 ms.
    local = threading.local()

    def run(feeds: dict) -> dict:
        request = getattr(local, "request", None)
        if request is None:
            request = local.request = compiled.create_infer_request()
        result = request.infer(feeds)
        return {name: np.array(result[name]) for name in names}  # copies, not views

    return _Runner(run, sequence_outputs)
