"""MDLM's Hugging Face release (kuleshov-group/mdlm-owt and its kind) as an :class:`MDLMModule`.

The release is a ``transformers`` model: ``config.json`` (``MDLMConfig``: ``vocab_size`` counting the mask id,
``model_length``, ``hidden_dim``, ``cond_dim``, ``n_blocks``, ``n_heads``, ``dropout``, ``time_conditioning``)
and ``model.safetensors``, whose tensors are the DIT's under ``backbone.`` (``backbone.vocab_embed.embedding``,
``backbone.blocks.0.attn_qkv.weight``, ..., ``backbone.rotary_emb.inv_freq``). Its mask id is the last row.
Nothing is downloaded here: pass a directory holding those files (e.g. ``huggingface_hub.snapshot_download``).
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor

from lightning_tsdfm.models import TransformerConfig
from tsdfm_mdlm.checkpoint_layout import is_mdlm_name
from tsdfm_mdlm.module import MDLMModule

CONFIG_FIELDS = ("vocab_size", "model_length", "hidden_dim", "cond_dim", "n_blocks", "n_heads")


def _read_safetensors(files: list[Path]) -> dict[str, Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as err:  # pragma: no cover - a dependency of the plugin
        raise ImportError("Reading MDLM's Hugging Face release needs safetensors: pip install safetensors") from err
    state: dict[str, Tensor] = {}
    for file in files:  # one file, or the shards of a larger release
        state.update(load_file(str(file)))
    return state


def _check_names(state: dict[str, Tensor], directory: Path) -> None:
    """Refuse a state dict that is not MDLM's DIT under ``backbone.``, saying which format it looks like."""
    names = list(state)
    odd = [n for n in names if not (n.startswith("backbone.") and is_mdlm_name(n.removeprefix("backbone.")))]
    if not odd:
        return
    if any(n.startswith(("blocks.0.qw.", "time_embedding.", "module.vocab_embed.")) for n in names):
        hint = "these are FS-DFM's names: load it with lightning_tsdfm.modules.load_fsdfm_teacher"
    elif any(n.startswith(("net.", "embed.", "blocks.0.qkv.")) for n in names):
        hint = "these are this library's names: load a lightning-tsdfm checkpoint with lightning_tsdfm.load_module"
    elif any(n.startswith(("vocab_embed.", "sigma_map.")) for n in names):
        hint = "these are MDLM's DIT names without the 'backbone.' prefix: pass them to MDLMModule.load_mdlm_backbone"
    else:
        hint = "expected MDLM's names (backbone.vocab_embed.embedding, backbone.blocks.{i}.attn_qkv.weight, ...)"
    raise KeyError(f"{directory} is not MDLM's Hugging Face release: {odd[:3]} match neither its layout nor ours; {hint}.")


def read_hf_release(path: str | Path) -> tuple[dict[str, Tensor], dict]:
    """(state dict, config) of a Hugging Face MDLM release: ``path`` is its directory (config.json and
    model.safetensors) or the model.safetensors file inside it."""
    path = Path(path)
    directory = path.parent if path.is_file() else path
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"No config.json in {directory}: MDLM's Hugging Face release keeps its MDLMConfig there.")
    config = json.loads(config_file.read_text())
    missing = [field for field in CONFIG_FIELDS if field not in config]
    if missing:
        raise KeyError(f"{config_file} lacks {missing}: not an MDLMConfig (model_type 'mdlm').")
    files = [path] if path.is_file() else sorted(directory.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"No .safetensors file in {directory}: expected MDLM's model.safetensors beside config.json.")
    state = _read_safetensors(files)
    _check_names(state, directory)
    return state, config


def load_hf_release(path: str | Path, **module_kwargs) -> MDLMModule:
    """An :class:`MDLMModule` computing the release's function: data vocabulary ``vocab_size - 1`` (the mask
    id is the last row), ``seq_len = model_length``, the DIT's sizes, ``time_conditioning`` as configured.
    ``module_kwargs`` are further MDLMModule arguments (optimizer, t_max, ...)."""
    state, config = read_hf_release(path)
    backbone = TransformerConfig(
        hidden_size=config["hidden_dim"], num_layers=config["n_blocks"], num_heads=config["n_heads"], mlp_ratio=4,
        cond_size=config["cond_dim"], dropout=config.get("dropout", 0.1), norm_weights=True,
    )
    module_kwargs.setdefault("time_conditioning", bool(config.get("time_conditioning", False)))
    module = MDLMModule(config["vocab_size"] - 1, config["model_length"], backbone=backbone, **module_kwargs)
    module.load_mdlm_backbone(state)
    return module
