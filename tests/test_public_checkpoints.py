"""MDLM's published weights: its Hugging Face release (config.json + model.safetensors) and the EMA weights of its
Lightning checkpoints load into MDLMModule and compute the source weights' logits."""

from __future__ import annotations

import json

import pytest
import torch

tsdfm_mdlm = pytest.importorskip("tsdfm_mdlm", reason="the MDLM plugin is installed by `make install`")
safetensors_torch = pytest.importorskip("safetensors.torch", reason="a dependency of the MDLM plugin")
from test_mdlm_plugin import _mdlm_layout_state, _mdlm_reference_logits  # noqa: E402
from tsdfm_mdlm import MDLMModule, from_mdlm_state_dict, load_hf_release, mdlm_ema_state_dict  # noqa: E402

from lightning_tsdfm.models import TransformerConfig  # noqa: E402
from lightning_tsdfm.modules.optim import OptimizerConfig  # noqa: E402

VOCAB, LEN, HIDDEN, BLOCKS, HEADS, COND = 9, 8, 32, 2, 4, 16
CFG = TransformerConfig(hidden_size=HIDDEN, num_layers=BLOCKS, num_heads=HEADS, mlp_ratio=4, cond_size=COND, norm_weights=True)


def write_hf_release(directory, state, time_conditioning=False) -> None:
    """What ``MDLM.save_pretrained`` writes: MDLMConfig as config.json and the DIT under ``backbone.``."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {"architectures": ["MDLM"], "model_type": "mdlm", "vocab_size": VOCAB + 1, "model_length": LEN,
              "hidden_dim": HIDDEN, "cond_dim": COND, "n_blocks": BLOCKS, "n_heads": HEADS, "dropout": 0.1,
              "time_conditioning": time_conditioning, "return_dict": False, "torch_dtype": "float32"}
    (directory / "config.json").write_text(json.dumps(config))
    safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()}, str(directory / "model.safetensors"),
                                metadata={"format": "pt"})


def _compare(module: MDLMModule, state: dict[str, torch.Tensor]) -> float:
    """Max |ours - MDLM's| over masked positions (SUBS leaves the revealed ones to the input)."""
    g = torch.Generator().manual_seed(5)
    data = torch.randint(0, VOCAB, (3, LEN), generator=g)
    masked = torch.rand(3, LEN, generator=g) < 0.5
    x = torch.where(masked, VOCAB, data)  # both put the mask id last
    t = torch.tensor([0.2, 0.5, 0.9])
    with torch.no_grad():
        ours = module.eval()(x, t)
        theirs = _mdlm_reference_logits(state, x, module.time_input(t) * 1000, HEADS, VOCAB)
    return (ours[masked] - theirs[masked]).abs().max().item()


@pytest.mark.parametrize("time_conditioning", [False, True])
def test_hf_release_loads_with_its_config_and_computes_its_logits(tmp_path, time_conditioning):
    state = _mdlm_layout_state(CFG, VOCAB + 1, seed=1)
    write_hf_release(tmp_path / "mdlm-owt", state, time_conditioning)
    module = load_hf_release(tmp_path / "mdlm-owt")
    assert module.hparams.vocab_size == VOCAB and module.hparams.seq_len == LEN
    assert module.time_conditioning == time_conditioning
    assert (module.net.config.hidden_size, module.net.config.num_layers, module.net.config.num_heads) == (HIDDEN, BLOCKS, HEADS)
    read_back = safetensors_torch.load_file(str(tmp_path / "mdlm-owt" / "model.safetensors"))
    assert _compare(module, read_back) < 1e-5
    from_file = load_hf_release(tmp_path / "mdlm-owt" / "model.safetensors",  # the file itself, and kwargs
                                optimizer=OptimizerConfig(lr=1e-4))
    assert from_file.hparams.optimizer.lr == 1e-4
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), from_file.state_dict().values()))


def test_ema_weights_load_and_are_the_ones_computed(tmp_path):
    """A Lightning checkpoint as MDLM saves it: state_dict (the raw weights) and ema.shadow_params, one tensor per
    ``backbone.parameters()`` entry in order (the inv_freq buffer is not a parameter)."""
    raw = _mdlm_layout_state(CFG, VOCAB + 1, seed=2)
    ema = _mdlm_layout_state(CFG, VOCAB + 1, seed=3)
    parameters = [name for name in raw if not name.endswith("rotary_emb.inv_freq")]
    checkpoint = {"state_dict": raw, "ema": {"decay": 0.9999, "num_updates": 10, "shadow_params": [ema[n] for n in parameters]},
                  "global_step": 10}
    torch.save(checkpoint, tmp_path / "last.ckpt")
    loaded = torch.load(tmp_path / "last.ckpt", weights_only=True)
    module = MDLMModule(VOCAB, LEN, backbone=CFG)
    module.load_mdlm_backbone(mdlm_ema_state_dict(loaded))
    assert _compare(module, ema) < 1e-5
    assert _compare(module, raw) > 1e-2  # the raw weights are a different function
    without_names = mdlm_ema_state_dict({"ema": checkpoint["ema"]})  # names from the DIT's definition order
    assert list(without_names) == parameters
    assert all(torch.equal(without_names[n], ema[n]) for n in parameters)


def test_errors_say_what_is_wrong(tmp_path):
    state = _mdlm_layout_state(CFG, VOCAB + 1)
    fsdfm_like = {k.removeprefix("backbone.").replace("vocab_embed.embedding", "vocab_embed.weight")
                  .replace("sigma_map", "time_embedding"): v for k, v in state.items()}
    write_hf_release(tmp_path / "fsdfm", fsdfm_like)
    with pytest.raises(KeyError, match="match neither .*FS-DFM's names: load it with lightning_tsdfm.modules.load_fsdfm_teacher"):
        load_hf_release(tmp_path / "fsdfm")
    write_hf_release(tmp_path / "other", {"lm_head.weight": torch.zeros(2, 2)})
    with pytest.raises(KeyError, match="expected MDLM's names"):
        load_hf_release(tmp_path / "other")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No config.json"):
        load_hf_release(tmp_path / "empty")
    with pytest.raises(KeyError, match="no \\['ema'\\]\\['shadow_params'\\]"):
        mdlm_ema_state_dict({"state_dict": state})
    short = {"state_dict": state, "ema": {"shadow_params": [state["backbone.vocab_embed.embedding"]]}}
    with pytest.raises(ValueError, match="does not cover the backbone"):
        mdlm_ema_state_dict(short)
    swapped = [v for k, v in state.items() if not k.endswith("inv_freq")]
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(ValueError, match="not in the backbone's parameter order"):
        mdlm_ema_state_dict({"state_dict": state, "ema": {"shadow_params": swapped}})
    with pytest.raises(ValueError, match="inv_freq is not RoPE .* is num_heads the checkpoint's n_heads"):
        from_mdlm_state_dict(state, num_heads=2)
