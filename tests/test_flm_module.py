"""FLMModule: the cross-entropy denoiser on the one-hot interpolant, the Euler sampler on the tau grid, checkpoints,
`tsdfm sample`, exact resume, and the shaper's refusal."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning_helpers import fit_checkpoint, quick_trainer

from lightning_tsdfm import SyntheticDataModule, TransformerConfig
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.modules.model_jumps import check_offers_steps
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.shaping import GuidedJump, TrajectoryShaper, make_selection

tsdfm_flm = pytest.importorskip("tsdfm_flm", reason="the FLM plugin is installed by `make install`")
from tsdfm_flm import FLMModule, euler_step, one_hot_interpolant  # noqa: E402

VOCAB, LEN = 8, 8
BACKBONE = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16)


def _datamodule(batches: int = 2) -> SyntheticDataModule:
    return SyntheticDataModule(vocab_size=VOCAB, num_states=4, seq_len=LEN, num_train=4 * batches, num_val=4,
                               batch_size=4)


def _flm(**kwargs) -> FLMModule:
    torch.manual_seed(0)
    return FLMModule(VOCAB, LEN, backbone=BACKBONE, **{"optimizer": OptimizerConfig(lr=1e-2, warmup_steps=1), **kwargs})


def _randomized(module):
    """Weights N(0, 0.3): a denoiser whose gates are open, so time and input matter."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return module.eval()


def test_loss_is_the_cross_entropy_at_x_gamma_on_every_position():
    module = _flm(antithetic=False)
    x1 = torch.randint(0, VOCAB, (4, LEN), generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(5)
    tau = torch.rand(4, generator=g)
    noise = torch.randn(4, LEN, VOCAB, generator=g)
    x = one_hot_interpolant(x1, module.path.gamma(tau), noise)
    expected = -torch.log_softmax(module(x, tau), -1).gather(-1, x1[..., None]).mean()
    assert torch.allclose(module.loss(x1, torch.Generator().manual_seed(5)), expected, atol=1e-6)


def test_antithetic_times_are_stratified():
    tau = _flm().draw_times(8, torch.Generator().manual_seed(0), "cpu")
    assert torch.allclose(torch.sort(tau).values.diff(), torch.full((7,), 1 / 8), atol=1e-6)


def test_soft_cap_bounds_the_logits():
    module = _randomized(_flm(logit_soft_cap=2.0))
    logits = module(torch.randn(2, LEN, VOCAB) * 50, torch.rand(2))
    assert logits.abs().max() <= 2.0


def test_euler_sampler_integrates_on_the_tau_grid_and_decodes_by_argmax():
    module = _randomized(_flm())
    steps, g = 4, torch.Generator().manual_seed(3)
    samples = module.sample(3, steps, generator=g)
    z = torch.randn(3, LEN, VOCAB, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for i in range(steps):
            tau = torch.full((3,), i / steps)
            denoised = module.denoise(z, tau)
            if i == steps - 1:
                expected = denoised.argmax(-1)
            else:
                z = euler_step(z, denoised, module.path.gamma(tau), module.path.gamma(tau + 1 / steps))
    assert samples.dtype == torch.long and torch.equal(samples, expected)
    one_step = module.sample(3, 1, generator=torch.Generator().manual_seed(3))
    z0 = torch.randn(3, LEN, VOCAB, generator=torch.Generator().manual_seed(3))
    assert torch.equal(one_step, module.denoise(z0, torch.zeros(3)).argmax(-1))


def test_its_step_is_tempered_not_the_librarys_jump_drawn_sampling_step():
    """FLM steps its continuous states at a temperature (``tempered_step``); ``sampling_step(sampler, jump)`` keeps
    one meaning, a step drawn by a jump policy, which FLM does not offer, so a compass refuses to learn its jumps."""
    flm = _flm()
    assert callable(flm.tempered_step) and callable(flm.tempered_denoiser)
    assert not hasattr(flm, "sampling_step") and not hasattr(flm, "sampling_denoiser")
    with pytest.raises(TypeError, match="sampling_step"):
        check_offers_steps(flm)


def test_temperature_tempers_the_denoiser_and_a_guided_jump_is_refused():
    module = _randomized(_flm())
    plain = module.sample(4, 4, generator=torch.Generator().manual_seed(0), jump=BlindJump())
    assert torch.equal(plain, module.sample(4, 4, generator=torch.Generator().manual_seed(0)))
    cold = module.sample(4, 4, generator=torch.Generator().manual_seed(0), jump=BlindJump(temperature=0.3))
    assert not torch.equal(plain, cold)
    guided = GuidedJump(lambda *args: None, 4, make_selection("argmin"), BlindJump())
    with pytest.raises(UserError, match="continuous states"):
        module.sample(2, 2, jump=guided)
    with pytest.raises(ValueError, match="no sampler 'ancestral'"):
        module.sample(2, 2, sampler="ancestral")


@pytest.fixture(scope="module")
def flm_ckpt(tmp_path_factory):
    return fit_checkpoint(_flm(), tmp_path_factory.mktemp("flm"), 3, _datamodule())


def test_checkpoint_loads_back_as_flm_and_samples_through_the_cli(flm_ckpt, tmp_path):
    from lightning_tsdfm.cli import main
    from lightning_tsdfm.samples_io import read_jsonl

    loaded = load_module(flm_ckpt, expected_kind="flm")
    assert isinstance(loaded, FLMModule) and loaded.data_card["vocab_size"] == VOCAB
    main(["sample", "--checkpoint", str(flm_ckpt), "--output", str(tmp_path / "s.jsonl"), "--steps", "8",
          "--num_samples", "4", "--temperature", "0.9"])
    samples = read_jsonl(tmp_path / "s.jsonl")
    assert samples.tokens.shape == (4, LEN) and samples.tokens.max() < VOCAB
    assert samples.meta["kind"] == "flm" and samples.meta["sampler"] == "euler"
    assert samples.meta["source"] == "gaussian" and samples.meta["sampling_temperature"] == 0.9


def test_resume_gives_the_same_weights(tmp_path):
    straight = _flm()
    quick_trainer(tmp_path / "a", 4).fit(straight, datamodule=_datamodule())
    saver = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=1, save_top_k=-1, filename="{step}")
    quick_trainer(tmp_path / "b", 3, [saver]).fit(_flm(), datamodule=_datamodule())
    resumed = _flm()
    quick_trainer(tmp_path / "c", 4).fit(resumed, datamodule=_datamodule(), ckpt_path=tmp_path / "ck" / "step=3.ckpt")
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_the_shaper_says_why_it_does_not_apply():
    with pytest.raises(TypeError, match="does not apply to FLMModule: its states are continuous.*deterministic"):
        TrajectoryShaper("oracle").setup(None, _flm(), "fit")
