"""Mapping between MDLM's public checkpoint layout (kuleshov-group/mdlm, ``models/dit.py``) and our backbone.

MDLM's DIT and our :class:`~lightning_tsdfm.models.DiffusionTransformer` compute the same function when the
backbone has ``norm_weights=True``; the names differ, and three tensors need a transform:

- RoPE: MDLM rotates channel pairs (j, j + D/2) of each head (rotate-half), we rotate (2j, 2j + 1). Permuting
  the q and k rows of ``attn_qkv`` by that pairing gives the same attention scores (q.k is invariant under
  one permutation of both);
- the output layer predicts the mask id too, whose logit SUBS sets to -inf: we drop that row;
- the mask id is the last embedding row here (id = vocab_size); MDLM's ``mask_index`` row is moved there.

``cond_bias`` (ours, zero-initialised) has no MDLM counterpart and is set to zero; ``rotary_emb.inv_freq`` is a
buffer we recompute: checked when read, written by :func:`to_mdlm_state_dict` (MDLM's DIT loads it strictly).
Keys may carry MDLM's ``backbone.`` prefix (its Lightning checkpoints and its Hugging Face release).
"""

from __future__ import annotations


import torch
from torch import Tensor

from lightning_tsdfm.models.rotary import rotate_half_inv_freq, rotate_half_pairing
from lightning_tsdfm.models.state_dict_layout import rename

# (MDLM name, our name); {i} is a block index
LAYOUT = [
    ("vocab_embed.embedding", "embed.weight"),
    ("sigma_map.mlp.0.weight", "time_embed.mlp.0.weight"),
    ("sigma_map.mlp.0.bias", "time_embed.mlp.0.bias"),
    ("sigma_map.mlp.2.weight", "time_embed.mlp.2.weight"),
    ("sigma_map.mlp.2.bias", "time_embed.mlp.2.bias"),
    ("blocks.{i}.norm1.weight", "blocks.{i}.norm1.weight"),
    ("blocks.{i}.attn_qkv.weight", "blocks.{i}.qkv.weight"),
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
IGNORED = ("rotary_emb.inv_freq",)


def is_mdlm_name(name: str) -> bool:
    """Whether ``name`` (without the ``backbone.`` prefix) is a tensor of MDLM's DIT."""
    return name in IGNORED or rename(name, LAYOUT) is not None


def rope_pairing(head_dim: int) -> Tensor:
    """Index map p with ours[c] = MDLM[p[c]] inside a head: (2j, 2j+1) <- (j, j + D/2)."""
    return rotate_half_pairing(head_dim)


def _permute_qk(qkv: Tensor, num_heads: int, index: Tensor) -> Tensor:
    three_d, d = qkv.shape
    w = qkv.view(3, num_heads, three_d // (3 * num_heads), d).clone()
    w[:2] = w[:2, :, index]
    return w.view(three_d, d)


def from_mdlm_state_dict(state: dict[str, Tensor], num_heads: int, mask_index: int | None = None) -> dict[str, Tensor]:
    """Our backbone's state dict from an MDLM DIT state dict (mask id ``mask_index``, default the last row)."""
    state = {k.removeprefix("backbone."): v for k, v in state.items()}
    _check_inv_freq(state, num_heads)
    out, unknown = {}, []
    for name, tensor in state.items():
        if name in IGNORED:
            continue
        ours = rename(name, LAYOUT)
        if ours is None:
            unknown.append(name)
            continue
        out[ours] = tensor
    if unknown:
        raise KeyError(f"Not part of MDLM's DIT layout: {unknown[:5]}{' ...' if len(unknown) > 5 else ''}.")
    rows = out["embed.weight"].shape[0]
    mask_index = rows - 1 if mask_index is None else mask_index
    keep = [r for r in range(rows) if r != mask_index]
    out["embed.weight"] = out["embed.weight"][keep + [mask_index]]
    out["head.weight"], out["head.bias"] = out["head.weight"][keep], out["head.bias"][keep]
    head_dim = out["embed.weight"].shape[1] // num_heads
    for name in [k for k in out if k.endswith(".qkv.weight")]:
        out[name] = _permute_qk(out[name], num_heads, rope_pairing(head_dim))
    out["cond_bias"] = torch.zeros(out["time_embed.mlp.2.bias"].shape[0])
    return out


def to_mdlm_state_dict(state: dict[str, Tensor], num_heads: int) -> dict[str, Tensor]:
    """The inverse map: an MDLM DIT state dict (mask id last, its output row zero) from our backbone's."""
    inverse = [(ours, mdlm) for mdlm, ours in LAYOUT]
    if state.get("cond_bias") is not None and state["cond_bias"].abs().max() > 0:
        raise ValueError("This backbone has a non-zero cond_bias, which MDLM's layout cannot hold.")
    out = {}
    for name, tensor in state.items():
        if name == "cond_bias":
            continue
        mdlm = rename(name, inverse)
        if mdlm is None:
            raise KeyError(f"{name} has no place in MDLM's DIT layout (a student's step-size embedding?).")
        out[mdlm] = tensor
    head_dim = out["vocab_embed.embedding"].shape[1] // num_heads
    inverse_pairing = torch.argsort(rope_pairing(head_dim))
    for name in [k for k in out if k.endswith(".attn_qkv.weight")]:
        out[name] = _permute_qk(out[name], num_heads, inverse_pairing)
    weight, bias = out["output_layer.linear.weight"], out["output_layer.linear.bias"]
    out["output_layer.linear.weight"] = torch.cat([weight, weight.new_zeros(1, weight.shape[1])])
    out["output_layer.linear.bias"] = torch.cat([bias, bias.new_zeros(1)])
    out["rotary_emb.inv_freq"] = rotate_half_inv_freq(head_dim)
    return out


def _check_inv_freq(state: dict[str, Tensor], num_heads: int) -> None:
    """MDLM's stored RoPE frequencies must be the ones our backbone recomputes (base 10000, this head size)."""
    stored = state.get("rotary_emb.inv_freq")
    if stored is None or "vocab_embed.embedding" not in state:
        return
    expected = rotate_half_inv_freq(state["vocab_embed.embedding"].shape[1] // num_heads)
    if stored.shape != expected.shape or not torch.allclose(stored.float(), expected):
        raise ValueError(f"rotary_emb.inv_freq is not RoPE with base 10000 for {num_heads} heads: is num_heads the "
                         "checkpoint's n_heads?")
