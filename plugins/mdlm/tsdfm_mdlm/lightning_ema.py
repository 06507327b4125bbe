"""The EMA weights of MDLM's Lightning checkpoints, the weights MDLM evaluates and samples with.

MDLM keeps them as ``checkpoint["ema"]["shadow_params"]``: an unnamed list, one tensor per parameter of
``itertools.chain(backbone.parameters(), noise.parameters())``, in that order (the log-linear schedule has no
parameters). The names come from the checkpoint's ``state_dict``, whose ``backbone.*`` parameters are in the same
order (the ``rotary_emb.inv_freq`` buffer is not a parameter), or, without one, from the DIT's definition order.
"""

from __future__ import annotations

from torch import Tensor

from tsdfm_mdlm.checkpoint_layout import IGNORED, LAYOUT, is_mdlm_name


def dit_parameter_names(num_blocks: int) -> list[str]:
    """The names of MDLM's DIT parameters in ``DIT.parameters()`` order (embedding, sigma map, blocks, output)."""
    head = [m for m, _ in LAYOUT if m.startswith(("vocab_embed.", "sigma_map."))]
    block = [m for m, _ in LAYOUT if m.startswith("blocks.")]
    tail = [m for m, _ in LAYOUT if m.startswith("output_layer.")]
    return head + [name.replace("{i}", str(i)) for i in range(num_blocks) for name in block] + tail


def _names_from_state_dict(state_dict: dict[str, Tensor]) -> list[str]:
    names = []
    for key in state_dict:
        name = key.removeprefix("backbone.")
        if key.startswith("backbone.") and is_mdlm_name(name) and name not in IGNORED:
            names.append(key)
    return names


def mdlm_ema_state_dict(checkpoint: dict) -> dict[str, Tensor]:
    """MDLM's EMA weights under the DIT's names (``backbone.*``), ready for ``MDLMModule.load_mdlm_backbone``.

    ``checkpoint`` is the dict ``torch.load`` returns for one of MDLM's Lightning ``.ckpt`` files.
    """
    if "ema" not in checkpoint or "shadow_params" not in (checkpoint["ema"] or {}):
        raise KeyError("This checkpoint has no ['ema']['shadow_params']: it was trained without EMA "
                       "(training.ema=0); load its raw weights with load_mdlm_backbone(checkpoint['state_dict']).")
    shadow = list(checkpoint["ema"]["shadow_params"])
    state_dict = checkpoint.get("state_dict")
    if state_dict:
        names = _names_from_state_dict(state_dict)
        if not names:
            raise KeyError(f"The checkpoint's state_dict holds no MDLM DIT parameter (backbone.vocab_embed.embedding, "
                           f"...; it has {list(state_dict)[:3]}): not one of MDLM's Lightning checkpoints.")
    else:
        blocks, rest = divmod(len(shadow) - 10, 10)
        if rest or blocks < 1:
            raise ValueError(f"{len(shadow)} EMA tensors cannot be an MDLM DIT (5 + 10 per block + 5) and the "
                             "checkpoint has no state_dict to name them: pass the whole Lightning checkpoint.")
        names = dit_parameter_names(blocks)
    if len(shadow) < len(names):
        raise ValueError(f"The checkpoint has {len(shadow)} EMA tensors for {len(names)} DIT parameters: "
                         "its EMA does not cover the backbone.")
    out = {}
    for name, tensor in zip(names, shadow):  # tensors past the backbone's belong to the noise schedule
        if state_dict and tuple(tensor.shape) != tuple(state_dict[name].shape):
            raise ValueError(f"EMA tensor for {name} has shape {tuple(tensor.shape)}, the state dict "
                             f"{tuple(state_dict[name].shape)}: the EMA list is not in the backbone's parameter order.")
        out[name if name.startswith("backbone.") else "backbone." + name] = tensor
    return out
