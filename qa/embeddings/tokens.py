"""Token ids for the exported embedder, with the `tokenizers` library alone.

transformers' `AutoTokenizer` wraps the same Rust tokenizer, but importing it imports
transformers and torch: about 4 s of every start (`qa ask`, `qa serve`) for a model
that runs in OpenVINO or ONNX Runtime. `Tokens` reads the checkpoint's `tokenizer.json`
and does what the embedder asked of `AutoTokenizer`: batches padded to their longest
text and truncated to the model's length, and counts of a text's tokens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class Tokens:
    """A checkpoint's tokenizer: `batch()` for the graph, `count()` for the chunker."""

    def __init__(self, tokenizer, pad_token: str, max_length: int):
        # Two copies, each configured once: the Rust tokenizer's padding and truncation
        # are settings of the object, and two threads (the web app answers two questions
        # at once) must never see one half-changed.
        self._counting = tokenizer
        self._counting.no_truncation()
        self._counting.no_padding()
        self.pad_token_id = tokenizer.token_to_id(pad_token)
        self._batching = type(tokenizer).from_str(tokenizer.to_str())
        self._batching.enable_truncation(max_length)
        self._batching.enable_padding(pad_id=self.pad_token_id, pad_token=pad_token)

    @classmethod
    def load(cls, folder: Path, max_length: int) -> Tokens:
        """The tokenizer of a checkpoint folder: its `tokenizer.json` when it has one (the
        converted e5 does), else transformers' fast tokenizer for it."""
        folder = Path(folder)
        if (folder / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            return cls(Tokenizer.from_file(str(folder / "tokenizer.json")),
                       _pad_token(folder / "tokenizer_config.json"), max_length)
        from transformers import AutoTokenizer

        fast = AutoTokenizer.from_pretrained(str(folder))
        return cls(fast.backend_tokenizer, fast.pad_token, max_length)

    def batch(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """input_ids, attention_mask and token_type_ids (int64, texts × longest)."""
        encodings = self._batching.encode_batch(list(texts))
        return {name: np.array([getattr(e, field) for e in encodings], dtype=np.int64)
                for name, field in (("input_ids", "ids"), ("attention_mask", "attention_mask"),
                                    ("token_type_ids", "type_ids"))}

    def ids(self, text: str) -> list[int]:
        """Every token id of `text`, special tokens included, never truncated."""
        return self._counting.encode(text).ids

    def count(self, text: str) -> int:
        """How many tokens the model sees for `text`, special tokens included."""
        return len(self.ids(text))


def _pad_token(config: Path) -> str:
    declared = json.loads(config.read_text(encoding="utf-8")).get("pad_token") \
        if config.is_file() else None
    if isinstance(declared, dict):  # an AddedToken written out
        declared = declared.get("content")
    return declared or "<pad>"
