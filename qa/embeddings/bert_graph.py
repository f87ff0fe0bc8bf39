"""The embedder's ONNX graph, written from a BERT checkpoint's weights without torch.

On a fresh machine the first start spent about half of its model making in torch:
installing it, importing it and sentence-transformers, then tracing the model. The
default encoder is a plain BERT (multilingual-e5-small: 12 layers, mean pooling, L2
normalisation), so its graph is written here node by node from the safetensors file
with `onnx.helper`: the same arithmetic as transformers' eager BERT and
sentence-transformers' pooling (erf GELU, masked scores plus the float32 minimum,
mean over the mask, norm clamped at 1e-12), hence the same vectors (tested against
sentence-transformers in torch). A checkpoint of another shape (not BERT, another
pooling, extra modules) is traced through torch as before (`embedder`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

INPUTS = ("input_ids", "attention_mask")
_OPSET = 17


def buildable(location: str | Path) -> bool:
    """Whether `location` is a local sentence-transformers folder this module can write
    the graph of: a BERT with absolute positions and GELU, mean pooling, normalised."""
    folder = Path(location)
    try:
        config = json.loads((folder / "config.json").read_text())
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
    except (OSError, ValueError, KeyError, IndexError):
        return False
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    return (config.get("model_type") == "bert" and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and kinds == ["Transformer", "Pooling", "Normalize"]
            and modes == ["pooling_mode_mean_tokens"]
            and (folder / "model.safetensors").is_file())


def describe(location: str | Path) -> dict:
    """What the graph alone does not say: declared prompts, vector size, token limit."""
    folder = Path(location)
    config = json.loads((folder / "config.json").read_text())
    st_config = folder / "config_sentence_transformers.json"
    declared = json.loads(st_config.read_text()).get("prompts", {}) if st_config.is_file() else {}
    limit = json.loads((folder / "sentence_bert_config.json").read_text()).get("max_seq_length")
    positions = config["max_position_embeddings"]
    return {"prompts": declared or {}, "dim": config["hidden_size"],
            "max_tokens": min(limit or positions, positions), "inputs": list(INPUTS)}


def write(location: str | Path, path: Path) -> None:
    """Write the encoder of `location`, pooled and normalised, as one ONNX graph:
    inputs `input_ids` and `attention_mask` (batch × sequence, int64), output
    `embedding` (batch × hidden, float32)."""
    import onnx
    from onnx import TensorProto, helper
    from safetensors.numpy import load_file

    folder = Path(location)
    config = json.loads((folder / "config.json").read_text())
    graph = _Graph(load_file(str(folder / "model.safetensors")), config["layer_norm_eps"])
    hidden = graph.encoder(config["num_hidden_layers"], config["num_attention_heads"])
    embedding = graph.pooled(hidden)
    dynamic = ["batch", "sequence"]
    model = helper.make_model(
        helper.make_graph(
            graph.nodes, "embedder",
            [helper.make_tensor_value_info(name, TensorProto.INT64, dynamic) for name in INPUTS],
            [helper.make_tensor_value_info(embedding, TensorProto.FLOAT,
                                           ["batch", config["hidden_size"]])],
            graph.initializers),
        opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="qa-fr")
    onnx.save(model, str(path))


class _Graph:
    """Nodes and weights being written; each `op` returns the name of its output."""

    def __init__(self, weights: dict[str, np.ndarray], eps: float):
        self.weights, self.eps = weights, eps
        self.nodes: list = []
        self.initializers: list = []
        self._names = 0

    def const(self, value, name: str | None = None) -> str:
        from onnx import numpy_helper

        self._names += 1
        name = name or f"const_{self._names}"
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, *inputs: str, output: str | None = None, **attributes) -> str:
        from onnx import helper

        self._names += 1
        out = output or f"{kind.lower()}_{self._names}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attributes))
        return out

    def weight(self, name: str) -> str:
        return self.const(self.weights[name], name)

    def linear(self, x: str, prefix: str) -> str:
        # torch stores [out, in]; MatMul wants [in, out].
        kernel = self.const(self.weights[f"{prefix}.weight"].T, f"{prefix}.weight")
        return self.op("Add", self.op("MatMul", x, kernel), self.weight(f"{prefix}.bias"))

    def layer_norm(self, x: str, prefix: str) -> str:
        return self.op("LayerNormalization", x, self.weight(f"{prefix}.weight"),
                       self.weight(f"{prefix}.bias"), axis=-1, epsilon=self.eps)

    def encoder(self, layers: int, heads: int) -> str:
        words = self.op("Gather", self.weight("embeddings.word_embeddings.weight"), "input_ids")
        # The first `sequence` rows of the position table (a Gather over a Range is
        # rewritten by ONNX Runtime into a Slice it then rejects).
        length = self.op("Slice", self.op("Shape", "input_ids"), self.const(np.array([1])),
                         self.const(np.array([2])))
        positions = self.op("Slice", self.weight("embeddings.position_embeddings.weight"),
                            self.const(np.array([0])), length, self.const(np.array([0])))
        x = self.op("Add", words, positions)
        # No token_type_ids input: every token is of type 0, as the tokenizer says.
        type_zero = self.weights["embeddings.token_type_embeddings.weight"][0]
        x = self.op("Add", x, self.const(type_zero))
        x = self.layer_norm(x, "embeddings.LayerNorm")
        self.mask = self.op("Cast", "attention_mask", to=1)  # float32
        # transformers' eager attention: (1 - mask) × float32 min added to the scores.
        blocked = self.op("Mul", self.op("Sub", self.const(np.array(1, np.float32)), self.mask),
                          self.const(np.array(np.finfo(np.float32).min, np.float32)))
        blocked = self.op("Unsqueeze", blocked, self.const(np.array([1, 2], np.int64)))
        for i in range(layers):
            x = self.layer(x, f"encoder.layer.{i}", heads, blocked)
        return x

    def layer(self, x: str, prefix: str, heads: int, blocked: str) -> str:
        size = self.weights[f"{prefix}.attention.self.query.weight"].shape[0]
        split = self.const(np.array([0, 0, heads, size // heads], np.int64))

        def heads_of(name: str, perm: list[int]) -> str:
            projected = self.linear(x, f"{prefix}.attention.self.{name}")
            return self.op("Transpose", self.op("Reshape", projected, split), perm=perm)

        query = heads_of("query", [0, 2, 1, 3])  # batch, head, token, dim
        key = heads_of("key", [0, 2, 3, 1])  # batch, head, dim, token
        value = heads_of("value", [0, 2, 1, 3])
        scores = self.op("Mul", self.op("MatMul", query, key),
                         self.const(np.array(1 / math.sqrt(size // heads), np.float32)))
        weights = self.op("Softmax", self.op("Add", scores, blocked), axis=-1)
        context = self.op("Transpose", self.op("MatMul", weights, value), perm=[0, 2, 1, 3])
        context = self.op("Reshape", context, self.const(np.array([0, 0, size], np.int64)))
        attended = self.op("Add", self.linear(context, f"{prefix}.attention.output.dense"), x)
        x = self.layer_norm(attended, f"{prefix}.attention.output.LayerNorm")
        inner = self.gelu(self.linear(x, f"{prefix}.intermediate.dense"))
        return self.layer_norm(self.op("Add", self.linear(inner, f"{prefix}.output.dense"), x),
                               f"{prefix}.output.LayerNorm")

    def gelu(self, x: str) -> str:
        """The exact GELU, x/2 × (1 + erf(x/√2)), as torch's ONNX export writes it."""
        erf = self.op("Erf", self.op("Div", x, self.const(np.array(math.sqrt(2), np.float32))))
        return self.op("Mul", self.op("Mul", x, self.op("Add", erf, self.const(
            np.array(1, np.float32)))), self.const(np.array(0.5, np.float32)))

    def pooled(self, hidden: str) -> str:
        """Mean of the unmasked tokens (count clamped at 1e-9), divided by its L2 norm
        (clamped at 1e-12), as sentence-transformers' Pooling and Normalize do."""
        mask = self.op("Unsqueeze", self.mask, self.const(np.array([2], np.int64)))
        axis = self.const(np.array([1], np.int64))
        total = self.op("ReduceSum", self.op("Mul", hidden, mask), axis, keepdims=0)
        count = self.op("Max", self.op("ReduceSum", mask, axis, keepdims=0),
                        self.const(np.array(1e-9, np.float32)))
        mean = self.op("Div", total, count)
        norm = self.op("Max", self.op("ReduceL2", mean, axes=[1], keepdims=1),
                       self.const(np.array(1e-12, np.float32)))
        return self.op("Div", mean, norm, output="embedding")
