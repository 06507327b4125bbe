"""A module written without this library's classes, in the style of MDLM's public LightningModule
(kuleshov-group/mdlm, diffusion.py), becomes shapeable with a few lines: one draw through ``jump_policy`` in the
library's time, a declared ``path`` and ``time_convention``, and its data vocabulary and length declared beside its
own ``vocab_size`` (which counts the mask, as MDLM's does). Then K = 1 is its unshaped training bit for bit, the
oracle compass with K > 1 changes its training, and a compass trained on its own jumps matches it and shapes it."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning_helpers import fit_checkpoint, quick_trainer

from lightning_tsdfm import BlindJump, LogLinearScheduler, MaskSource, MixturePath  # shaping
from lightning_tsdfm import CompassModule, SyntheticDataModule, TransformerConfig
from lightning_tsdfm import plugins as plugin_registry
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.shaping import GuidedJump, TrajectoryShaper, check_shapeable, make_selection
from lightning_tsdfm.shaping.protocol import declared_vocab_size
from lightning_tsdfm.shaping.protocol import library_time  # shaping

VOCAB, LEN = 8, 8
SMALL = TransformerConfig(hidden_size=8, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=8)
KIND = "foreign-mdlm"
#: its configuration, as MDLM's Hydra config holds it (model.length, the noise, training.sampling_eps, the optimizer)
CONFIG = {"model": {"length": LEN, "hidden_size": 16}, "noise": {"type": "loglinear"}, "training": {"sampling_eps": 1e-3},
          "optim": {"lr": 1e-2, "betas": [0.9, 0.999]}}
TOKENIZERS = {"tiny": VOCAB}  # tokenizer name -> vocabulary size


class Config:
    """A stand-in for MDLM's OmegaConf DictConfig: entries read as attributes, and a record of each entry's type,
    which its pickle names (builtins.dict, builtins.int, ...), as OmegaConf's metadata does."""

    def __init__(self, content: dict) -> None:
        self._content = {key: Config(value) if isinstance(value, dict) else value for key, value in content.items()}
        self._types = {key: type(value) for key, value in content.items()}

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in self._content:
            raise AttributeError(name)
        return self._content[name]

    def to_container(self) -> dict:
        """Plain values (OmegaConf.to_container)."""
        return {key: value.to_container() if isinstance(value, Config) else value for key, value in self._content.items()}

    @classmethod
    def of(cls, value: Config | dict) -> Config:
        return value if isinstance(value, Config) else cls(value)


class Tokenizer:
    """A stand-in for MDLM's Hugging Face tokenizer, known by its name: V data tokens and no mask token (MDLM then
    appends the mask id V)."""

    mask_token = None

    def __init__(self, name_or_path: str = "tiny") -> None:
        self.name_or_path = name_or_path
        self.vocab_size = TOKENIZERS[name_or_path]

    @classmethod
    def of(cls, value: Tokenizer | str) -> Tokenizer:
        return value if isinstance(value, Tokenizer) else cls(value)


class LogLinearNoise(torch.nn.Module):
    """MDLM's noise schedule: (sigma(t), d sigma / dt) with sigma(t) = -log(1 - (1 - eps) t), t = 1 noise."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return -torch.log1p(-(1 - self.eps) * t), (1 - self.eps) / (1 - (1 - self.eps) * t)


class TinyBackbone(torch.nn.Module):
    """Logits [B, L, V + 1] from tokens [B, L] and MDLM's sigma [B]: embeddings, a sequence-mean mixer, a head."""

    def __init__(self, states: int, length: int, hidden: int) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(states, hidden)
        self.position = torch.nn.Parameter(torch.randn(length, hidden) * 0.1)
        self.sigma_map = torch.nn.Linear(1, hidden)
        self.mix = torch.nn.Linear(hidden, hidden)
        self.head = torch.nn.Linear(hidden, states)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.position[: x.shape[1]] + self.sigma_map(sigma[:, None, None])
        return self.head(torch.relu(h + self.mix(h.mean(1, keepdim=True))))


class ForeignMDLM(L.LightningModule):
    """MDLM's Diffusion module in miniature: t = 1 is noise, log-linear noise sigma(t) = -log(1 - (1 - eps) t),
    SUBS logits over V + 1 states (mask id V), MDLM's reverse update q(x_s | x_t) with s = t - dt, and a
    distillation-like step: the midpoint m = one reverse draw from x_t to t / 2, the target p(x0 | m) (one-hot where
    m revealed a token), the loss -sum_i target^i . log p(x0^i | x_t) on the masked positions of x_t. As MDLM's, its
    training draws (times, masks, the reverse draws) come from torch's global generator.

    Like MDLM's, it keeps its config and tokenizer objects as hyper-parameters, and its ``vocab_size`` counts the
    mask (V + 1, assigned in ``__init__`` and used by its own code).
    The ten shaping lines, marked ``# shaping`` (plugins/README.md quotes them): two imports, ``time_convention``,
    ``jump_policy``, ``path``, ``shaping_vocab_size`` and ``seq_len`` (set in ``__init__``), and in
    :meth:`_ddpm_update` the next-state kernel, drawn by ``jump_policy.transition`` in the library's time instead of
    MDLM's ``_sample_categorical(q_xs)`` (its ``generator`` and ``jump`` arguments are for a compass's steps). For the
    compass loader: ``checkpoint_kind``, the checkpoint header and plain hyper-parameters written in
    :meth:`on_save_checkpoint` (its ``__init__`` takes either), and :meth:`sampling_step`.
    """

    checkpoint_kind = KIND
    time_convention = "noise_at_1"  # shaping: its t = 1 is noise; library_time(self, t) = 1 - t

    def __init__(self, config: Config | dict, tokenizer: Tokenizer | str) -> None:
        super().__init__()
        self.save_hyperparameters()  # as MDLM: its config and tokenizer
        self.config, self.tokenizer = Config.of(config), Tokenizer.of(tokenizer)  # or the plain values a checkpoint holds
        self.vocab_size = self.tokenizer.vocab_size  # MDLM's: the tokenizer's vocabulary, then the mask id appended
        self.mask_index = self.vocab_size
        self.vocab_size += 1
        self.backbone = TinyBackbone(self.vocab_size, self.config.model.length, self.config.model.hidden_size)
        self.noise = LogLinearNoise()  # MDLM's noise_schedule.get_noise(config) for noise.type = loglinear
        self.jump_policy = BlindJump()  # shaping: every reverse draw goes through it
        self.path = MixturePath(MaskSource(self.mask_index), LogLinearScheduler(self.noise.eps))  # shaping
        self.shaping_vocab_size = self.mask_index  # shaping: the data tokens; its own vocab_size counts the mask
        self.seq_len = self.config.model.length  # shaping

    # ---- MDLM's pieces

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """SUBS: log p(x0 | x_t) [B, L, V + 1], never the mask; a revealed token is carried over."""
        logits = self.backbone(x, sigma)
        logits[:, :, self.mask_index] = -torch.inf
        logits = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
        revealed = (x != self.mask_index)[..., None]
        return torch.where(revealed, torch.log(F.one_hot(x, self.vocab_size).to(logits)), logits)

    def q_xt(self, x0: torch.Tensor, move_chance: torch.Tensor) -> torch.Tensor:
        move = torch.rand(x0.shape, device=x0.device) < move_chance[:, None]  # torch's global generator, as MDLM
        return torch.where(move, self.mask_index, x0)

    def _ddpm_update(self, x, t, dt, generator=None, jump=None):  # shaping: a compass's steps pass generator, jump
        """x_s, s = t - dt, drawn from MDLM's q(x_s | x_t) over the V + 1 states; t and dt of shape [B] or, as MDLM's
        sampler passes them, [B, 1]."""
        sigma_t, _ = self.noise(t)
        sigma_s, _ = self.noise(t - dt)
        if sigma_t.ndim > 1:
            sigma_t, sigma_s = sigma_t.squeeze(-1), sigma_s.squeeze(-1)
        move_chance_t = (1 - torch.exp(-sigma_t))[:, None, None]
        move_chance_s = (1 - torch.exp(-sigma_s))[:, None, None]
        q_xs = self(x, sigma_t).exp() * (move_chance_t - move_chance_s)
        q_xs[:, :, self.mask_index] = move_chance_s[:, :, 0]
        kernel = torch.where((x == self.mask_index)[..., None], q_xs / move_chance_t, F.one_hot(x, self.vocab_size).to(q_xs))  # shaping
        _x = (jump or self.jump_policy).transition(x, kernel, library_time(self, t), dt, generator)  # shaping: was _sample_categorical(q_xs)
        copy_flag = (x != self.mask_index).to(x.dtype)
        return copy_flag * x + (1 - copy_flag) * _x

    def training_step(self, x0: torch.Tensor, batch_idx: int) -> torch.Tensor:
        eps = self.config.training.sampling_eps  # every draw from torch's global generator, as MDLM's
        t = (1 - eps) * torch.rand(x0.shape[0], device=x0.device) + eps
        x_t = self.q_xt(x0, 1 - torch.exp(-self.noise(t)[0]))
        with torch.no_grad():
            midpoint = self._ddpm_update(x_t, t[:, None], t[:, None] / 2)  # times [B, 1], as MDLM's sampler
            target = self(midpoint, self.noise(t / 2)[0]).exp()[..., : self.mask_index]
        log_p = self(x_t, self.noise(t)[0])[..., : self.mask_index]
        masked = x_t == self.mask_index
        loss = -(target * log_p).sum(-1)[masked].mean()
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.config.optim.lr, betas=self.config.optim.betas)

    # ---- for the library's checkpoint loader and a compass on its own jumps

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["tsdfm"] = {"kind": KIND, "class_path": f"{type(self).__module__}.{type(self).__qualname__}",
                               "data_card": None}
        checkpoint["hyper_parameters"] = {"config": self.config.to_container(), "tokenizer": self.tokenizer.name_or_path}

    def sampling_step(self, sampler, jump):
        """One reverse update from library time t to t + h (its own time 1 - t to 1 - t - h), drawn by ``jump``."""
        return lambda x, t, h, generator: self._ddpm_update(x, library_time(self, t), h, generator, jump)


def _datamodule() -> SyntheticDataModule:
    return SyntheticDataModule(vocab_size=VOCAB, num_states=4, seq_len=LEN, num_train=8, num_val=4, batch_size=4)


def _mdlm() -> ForeignMDLM:
    """Built as MDLM's own main builds its module: Diffusion(config, tokenizer=tokenizer)."""
    return ForeignMDLM(Config(CONFIG), tokenizer=Tokenizer("tiny"))


def _fit(root, steps: int = 3, callbacks=()) -> ForeignMDLM:
    torch.manual_seed(0)
    module = _mdlm()
    quick_trainer(root, steps, list(callbacks)).fit(module, datamodule=_datamodule())
    return module


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture
def registered(monkeypatch):
    """ForeignMDLM known to the checkpoint loader, as an installed plugin's entry point would make it."""
    monkeypatch.setitem(plugin_registry._loaded, "foreign_mdlm", ForeignMDLM)


@pytest.fixture(scope="module")
def own_compass(tmp_path_factory):
    """A compass checkpoint trained on ForeignMDLM's own jumps (two steps of each)."""
    root = tmp_path_factory.mktemp("own_compass")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(plugin_registry._loaded, "foreign_mdlm", ForeignMDLM)
        torch.manual_seed(0)
        model = fit_checkpoint(_mdlm(), root / "model", 2, _datamodule())
        compass = CompassModule(str(model), VOCAB, LEN, backbone=SMALL, teacher_kind=KIND,
                                optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
        return fit_checkpoint(compass, root / "compass", 2, _datamodule())


# ---- the declarations

def test_it_is_shapeable_with_its_own_hyper_parameter_names_and_vocab_size():
    module = _mdlm()
    check_shapeable(module)
    assert set(module.hparams) == {"config", "tokenizer"}
    assert module.vocab_size == VOCAB + 1 and module.mask_index == VOCAB  # MDLM's own, untouched
    assert declared_vocab_size(module) == VOCAB
    t = torch.tensor([0.9, 0.25])
    assert torch.equal(library_time(module, t), 1 - t)


def test_its_draws_go_through_the_policy_in_the_library_time():
    seen = []

    class Recording(BlindJump):
        def transition(self, x, kernel, t, h, generator=None):
            seen.append((t, h, kernel))
            return super().transition(x, kernel, t, h, generator)

    module = _mdlm()
    module.jump_policy = Recording()
    x = torch.full((2, LEN), VOCAB)
    t = torch.tensor([0.75, 0.5])
    module._ddpm_update(x, t, torch.tensor([0.25, 0.25]), torch.Generator().manual_seed(0))
    (t_library, h, kernel), = seen
    assert torch.equal(t_library, 1 - t) and torch.equal(h, torch.tensor([0.25, 0.25]))
    assert torch.allclose(kernel.sum(-1), torch.ones(2, LEN))
    stay = kernel[..., VOCAB]  # a masked position stays masked with move_chance(s) / move_chance(t), about s / t
    assert torch.allclose(stay, torch.tensor([0.5 / 0.75, 0.25 / 0.5])[:, None].expand(-1, LEN), atol=1e-3)


def test_wrong_or_missing_declarations_are_clear_errors():
    counts_the_mask = _mdlm()
    del counts_the_mask.shaping_vocab_size  # MDLM as it is: only its own vocab_size, V + 1
    with pytest.raises(ValueError, match=r"vocab_size=9 .* counts the mask id .* `self.shaping_vocab_size = 8`"):
        check_shapeable(counts_the_mask)

    wrong_mask = _mdlm()  # the path built on MDLM's vocab_size: the mask at 9, where its mask_index is 8
    wrong_mask.path = MixturePath(MaskSource(wrong_mask.vocab_size), LogLinearScheduler())
    wrong_mask.shaping_vocab_size = wrong_mask.vocab_size
    with pytest.raises(ValueError, match=r"mask_index = 8 but its path's MaskSource\(9\) puts the mask at id 9: .*MaskSource\(8\)"):
        check_shapeable(wrong_mask)

    too_many = _mdlm()
    too_many.shaping_vocab_size = VOCAB + 2
    with pytest.raises(ValueError, match="declares shaping_vocab_size=10 but its path's source has 8 data tokens"):
        check_shapeable(too_many)

    class OtherClock(ForeignMDLM):
        time_convention = "mdlm"

    with pytest.raises(ValueError, match="time_convention='mdlm'.*noise_at_1"):
        check_shapeable(OtherClock(Config(CONFIG), "tiny"))

    undeclared = _mdlm()
    undeclared.seq_len = None
    with pytest.raises(TypeError, match="needs `seq_len`"):
        TrajectoryShaper("oracle").setup(None, undeclared, "fit")


def test_the_readme_recipe_is_its_ten_shaping_lines():
    """plugins/README.md's recipe quotes this module's code lines marked ``# shaping``, and there are ten."""
    import re
    from pathlib import Path

    def marked(text: str) -> list[str]:
        return re.findall(r"^[ \t]*(\S.*?  # shaping(?::.*)?)$", text, re.MULTILINE)

    readme = (Path(__file__).resolve().parents[1] / "plugins" / "README.md").read_text()
    recipe = readme[readme.index("## Shaping a module written without this library"):readme.index("## A compass")]
    assert marked(recipe) == marked(Path(__file__).read_text()) and len(marked(recipe)) == 10


# ---- shaping its training

def test_one_candidate_is_its_unshaped_training_bit_for_bit(own_compass, tmp_path):
    """Its draws come from torch's global generator, so the callback must leave it as it found it, also while it
    builds a compass checkpoint's module (initialised at random before its weights load)."""
    module, state = _mdlm(), torch.random.get_rng_state()
    TrajectoryShaper(str(own_compass), num_candidates=1).setup(None, module, "fit")
    assert torch.equal(torch.random.get_rng_state(), state)
    blind = _fit(tmp_path / "blind")
    for name, compass in (("oracle", "oracle"), ("checkpoint", str(own_compass))):
        single = _fit(tmp_path / name, callbacks=[TrajectoryShaper(compass, num_candidates=1)])
        assert _same_weights(blind, single), name


def test_its_k_candidates_reveal_the_same_positions_as_its_blind_draw():
    """Drawn through its kernel inside its own reverse update (times [B, 1] and a step of one number, as MDLM's
    sampler passes them), the K candidates reveal the same positions, so the kept state keeps the schedule."""
    seen = []

    def energies(x, t):
        seen.append(x.clone())
        return x.float().sin()

    module, blind = _mdlm(), _mdlm()
    module.jump_policy = GuidedJump(energies, 4, make_selection("argmin"))
    module.jump_policy.generator = torch.Generator().manual_seed(1)
    blind.load_state_dict(module.state_dict())
    x, t = torch.full((16, LEN), VOCAB), torch.full((16, 1), 0.8)
    with torch.no_grad():
        kept = module._ddpm_update(x, t, 0.4, torch.Generator().manual_seed(0))
        masked = blind._ddpm_update(x, t, 0.4, torch.Generator().manual_seed(0)) == VOCAB
    candidates = seen[0].reshape(4, 16, LEN)
    assert (candidates == VOCAB).logical_xor(masked).sum() == 0 and torch.equal(kept == VOCAB, masked)
    assert not (candidates == candidates[0]).all()


def test_the_oracle_compass_with_k_candidates_changes_its_training(tmp_path):
    shaper = TrajectoryShaper("oracle", num_candidates=4, policy="argmin")  # never keeps a worse-than-average one
    trainer = quick_trainer(tmp_path / "k4", 3, [shaper])
    torch.manual_seed(0)
    shaped = _mdlm()
    trainer.fit(shaped, datamodule=_datamodule())
    assert not _same_weights(_fit(tmp_path / "blind"), shaped)
    assert 0.0 < trainer.callback_metrics["shaping/changed_fraction"] <= 1.0
    assert trainer.callback_metrics["shaping/energy_chosen"] <= trainer.callback_metrics["shaping/energy_candidates"]
    assert isinstance(shaped.jump_policy, BlindJump) and not any("compass" in k for k in shaped.state_dict())


# ---- a compass on its own jumps (CompassModule with teacher_kind)

def test_its_config_and_tokenizer_objects_are_refused_by_name_with_what_to_do(tmp_path):
    """Saved as MDLM saves them (the objects themselves), its hyper-parameters are refused: the message names the
    two classes, not the plain types their pickles also name, and says how to save plain values."""

    class KeepsTheObjects(ForeignMDLM):
        def on_save_checkpoint(self, checkpoint: dict) -> None:
            super().on_save_checkpoint(checkpoint)
            checkpoint["hyper_parameters"] = dict(self.hparams)  # what save_hyperparameters() alone writes

    torch.manual_seed(0)
    path = fit_checkpoint(KeepsTheObjects(Config(CONFIG), Tokenizer("tiny")), tmp_path, 1, _datamodule())
    assert {"builtins.dict", "builtins.int", "builtins.list"} <= set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    with pytest.raises(ValueError) as info:
        load_module(path, expected_kind=KIND)
    message = str(info.value)
    refused = message[message.index("allow-list (") + len("allow-list ("):message.index(")")]
    assert refused == f"{Config.__module__}.Config, {Tokenizer.__module__}.Tokenizer"
    assert "builtins" not in message
    assert "on_save_checkpoint" in message and "plain values" in message and "to_container" in message


def test_a_compass_trained_on_its_own_jumps_matches_and_shapes_it(registered, tmp_path):
    torch.manual_seed(0)
    model_ckpt = fit_checkpoint(_mdlm(), tmp_path / "model", 2, _datamodule())
    assert type(load_module(model_ckpt, expected_kind=KIND)) is ForeignMDLM

    torch.manual_seed(0)
    compass = CompassModule(str(model_ckpt), VOCAB, LEN, backbone=SMALL, teacher_kind=KIND, optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    assert compass.hparams.source == "mask" and compass.hparams.seq_len == LEN
    assert compass.hparams.scheduler_exponent is None  # not t^n: its training states are drawn on the model's path
    assert compass.model_path().scheduler == LogLinearScheduler()
    assert compass.hparams.teacher_hparams["config"] == CONFIG  # its own hyper-parameters, as saved, completed
    assert compass.hparams.teacher_hparams["tokenizer"] == "tiny" and compass.hparams.teacher_hparams["vocab_size"] == VOCAB
    seen = []

    class Recording(BlindJump):
        def transition(self, x, kernel, t, h, generator=None):
            seen.append(t)
            return super().transition(x, kernel, t, h, generator)

    compass.blind_jump = Recording()
    before = [p.detach().clone() for p in compass.parameters()]
    trainer = quick_trainer(tmp_path / "compass", 3)
    trainer.fit(compass, datamodule=_datamodule())
    assert len(seen) == 3  # one own jump (its transition) per training step
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert not all(torch.equal(a, b) for a, b in zip(before, compass.parameters()))
    trainer.save_checkpoint(tmp_path / "compass.ckpt")

    model_ckpt.rename(tmp_path / "moved.ckpt")  # a saved compass scores without the model's file
    loaded = load_module(tmp_path / "compass.ckpt", expected_kind="compass")
    x, t = torch.randint(0, VOCAB + 1, (3, LEN)), torch.rand(3)
    assert torch.equal(loaded.energies(x, t), compass.eval().energies(x, t))

    shaped = _fit(tmp_path / "shaped", callbacks=[TrajectoryShaper(str(tmp_path / "compass.ckpt"), num_candidates=4)])
    assert not _same_weights(_fit(tmp_path / "blind"), shaped)
