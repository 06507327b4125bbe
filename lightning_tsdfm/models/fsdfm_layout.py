"""Mapping from FS-DFM's transformer (apple/ml-fs-dfm, ``model/transformer.py``) to our backbone.

FS-DFM's teacher (``dt_conditioned=False``; the DFM pre-training model is the same network) computes the same
function as :class:`~lightning_tsdfm.models.DiffusionTransformer` built with ``norm_weights=True`` and
``time_scale=1.0`` (FS-DFM embeds t itself where we embed 1000 t). The names differ, and:

- q, k and v are three matrices there (``qw``, ``kw``, ``vw``), one ``qkv`` here; RoPE rotates channel pairs
  (j, j + D/2) there, (2j, 2j + 1) here, so the q and k rows are permuted by
  :func:`~lightning_tsdfm.models.rotary.rotate_half_pairing`;
- with a mask source its output layer also scores the mask id (the last row, as here): we drop that row,
  which leaves every data-token logit unchanged;
- ``rotary_emb.inv_freq`` is a buffer we recompute (checked, then dropped); ``cond_bias`` (ours) is zero.

FS-DFM's few-step student (``dt_conditioned=True``) cannot be mapped: it embeds the step size separately,
fuses [emb(t); emb(dt)] through a linear layer and a SiLU, then gives every block and the output layer its own
linear "condition fuser" and SiLU before the adaLN modulation. Our backbone adds emb(t) + emb(h) and applies one
SiLU shared by all blocks, which no choice of weights turns into those per-block nonlinear fusers.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from lightning_tsdfm.models.backbone import TransformerConfig
from lightning_tsdfm.models.rotary import rotate_half_inv_freq, rotate_half_pairing
from lightning_tsdfm.models.state_dict_layout import rename

# (FS-DFM name, our name); {i} is a block index. q/k/v are merged separately.
LAYOUT = [
    ("vocab_embed.weight", "embed.weight"),
    ("time_embedding.mlp.0.weight", "time_embed.mlp.0.weight"),
    ("time_embedding.mlp.0.bias", "time_embed.mlp.0.bias"),
    ("time_embedding.mlp.2.weight", "time_embed.mlp.2.weight"),
    ("time_embedding.mlp.2.bias", "time_embed.mlp.2.bias"),
    ("blocks.{i}.norm1.weight", "blocks.{i}.norm1.weight"),
    ("blocks.{i}.attn_out.weight", "blocks.{i}.proj.weight"),
    ("blocks.{i}.norm2.weight", "blocks.{i}.norm2.weight"),
    ("blocks.{i}.mlp.0.weight", "blocks.{i}.mlp.0.weight"),
    ("blocks.{i}.mlp.0.bias", "blocks.{i}.mlp.0.bias"),
    ("blocks.{i}.mlp.2.weight", "blocks.{i}.mlp.2.weight"),
    ("blocks.{i}.mlp.2.bias", "blocks.{i}.mlp.2.bias"),
    ("blocks.{i}.adaLN_modulation.weight", "blocks.{i}.modulation.weight"),
    ("blocks.{i}.adaLN_modulation.bias", "blocks.{i}.modulation.bias"),
    ("output_layer.norm_final.weight", "final_norm.weight"),
    ("output_layer.linear.weight", "head.weight"),
    ("output_layer.linear.bias", "head.bias"),
    ("output_layer.adaLN_modulation.weight", "final_modulation.weight"),
    ("output_layer.adaLN_modulation.bias", "final_modulation.bias"),
]
QKV = re.compile(r"^blocks\.(\d+)\.(qw|kw|vw)\.weight$")
STUDENT = re.compile(r"^(dt_embedding\.|time_condition_fuser\.|blocks\.\d+\.condition_fuser\.|output_layer\.condition_fuser\.)")
WRAPPERS = ("module.", "_orig_mod.")  # DDP and torch.compile prefixes


def strip_wrappers(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state dict without the ``module.`` / ``_orig_mod.`` prefixes DDP and torch.compile add."""
    out = {}
    for name, tensor in state.items():
        while name.startswith(WRAPPERS):
            name = name.removeprefix("module.").removeprefix("_orig_mod.")
        out[name] = tensor
    return out


def from_fsdfm_state_dict(state: dict[str, Tensor], num_heads: int, masked: bool) -> dict[str, Tensor]:
    """Our backbone's state dict from an FS-DFM teacher's (``masked``: trained with the mask source)."""
    state = strip_wrappers(state)
    student = sorted(name for name in state if STUDENT.match(name))
    if student:
        raise ValueError(
            f"This is an FS-DFM student (dt_conditioned=True; e.g. {student[0]}): its per-block condition fusers "
            "have no counterpart in this backbone. Load the teacher instead: the checkpoint's 'teacher_model' "
            "(or the DFM initialisation's 'model')."
        )
    out, qkv, unknown = {}, {}, []
    for name, tensor in state.items():
        if name == "rotary_emb.inv_freq":
            continue
        match = QKV.match(name)
        if match:
            qkv.setdefault(int(match.group(1)), {})[match.group(2)] = tensor
            continue
        ours = rename(name, LAYOUT)
        if ours is None:
            unknown.append(name)
        else:
            out[ours] = tensor
    if unknown or "embed.weight" not in out:
        raise KeyError(
            f"Not FS-DFM's transformer layout: unknown names {unknown[:5]}{' ...' if len(unknown) > 5 else ''}"
            f"{'' if 'embed.weight' in out else ', no vocab_embed.weight'}. Expected the state dict of "
            "fs_dfm/model/transformer.py's Transformer (vocab_embed.weight, time_embedding.mlp.*, blocks.{i}.qw.weight, ...)."
        )
    width = out["embed.weight"].shape[1]
    if width % num_heads:
        raise ValueError(f"num_heads={num_heads} does not divide FS-DFM's hidden size {width}: pass its config's n_heads.")
    head_dim = width // num_heads
    inv_freq, expected = state.get("rotary_emb.inv_freq"), rotate_half_inv_freq(head_dim)
    if inv_freq is not None and (inv_freq.shape != expected.shape or not torch.allclose(inv_freq.float(), expected)):
        raise ValueError(f"rotary_emb.inv_freq is not RoPE with base 10000 for head_dim={head_dim}: is num_heads={num_heads} FS-DFM's n_heads?")
    pairing = rotate_half_pairing(head_dim)
    for block, parts in qkv.items():
        if set(parts) != {"qw", "kw", "vw"}:
            raise KeyError(f"Block {block} lacks {sorted({'qw', 'kw', 'vw'} - set(parts))}: not a complete FS-DFM checkpoint.")
        q, k = (parts[p].view(num_heads, head_dim, width)[:, pairing].reshape(width, width) for p in ("qw", "kw"))
        out[f"blocks.{block}.qkv.weight"] = torch.cat([q, k, parts["vw"]])
    if masked:
        out["head.weight"], out["head.bias"] = out["head.weight"][:-1], out["head.bias"][:-1]
    out["cond_bias"] = torch.zeros(out["time_embed.mlp.2.bias"].shape[0])
    return out


def fsdfm_backbone_config(state: dict[str, Tensor], num_heads: int, dropout: float = 0.1, **overrides) -> TransformerConfig:
    """The :class:`TransformerConfig` that holds an FS-DFM teacher's weights (sizes read from the tensors;
    ``num_heads`` is its config's ``n_heads``, which no tensor shape records)."""
    state = strip_wrappers(state)
    hidden = state["vocab_embed.weight"].shape[1]
    blocks = {int(m.group(1)) for m in map(QKV.match, state) if m}
    return TransformerConfig(
        hidden_size=hidden,
        num_layers=len(blocks),
        num_heads=num_heads,
        mlp_ratio=state["blocks.0.mlp.0.weight"].shape[0] // hidden,
        cond_size=state["time_embedding.mlp.2.bias"].shape[0],
        dropout=dropout,
        norm_weights=True,
        time_scale=1.0,
        **overrides,
    )
