"""Shared tiny fixtures. The machine is small and busy: one torch thread, tiny models, few hypothesis examples."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

from lightning_helpers import TINY_LEN, TINY_TEACHER, TINY_VOCAB, fit_checkpoint, tiny_synthetic

from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from lightning_tsdfm.modules import TeacherModule
from lightning_tsdfm.modules.optim import OptimizerConfig

torch.set_num_threads(1)

settings.register_profile(
    "tsdfm",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("stress", parent=settings.get_profile("tsdfm"), max_examples=500)
settings.load_profile(os.environ.get("TSDFM_HYPOTHESIS_PROFILE", "tsdfm"))


VOCAB = 12
SEQ_LEN = 8


@pytest.fixture
def tiny_config() -> TransformerConfig:
    return TransformerConfig(hidden_size=32, num_layers=2, num_heads=2, mlp_ratio=2, cond_size=32)


def randomize_(model: torch.nn.Module, std: float = 0.2, seed: int = 0) -> torch.nn.Module:
    """Overwrite every parameter with N(0, std): a 'trained' model whose adaLN gates are not zero.

    A freshly initialised DiT is the identity in every block (adaLN-Zero), which would make tests about
    attention or conditioning vacuous.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


@pytest.fixture
def randomize():
    return randomize_


@pytest.fixture
def make_backbone(tiny_config):
    def build(**kwargs) -> DiffusionTransformer:
        args = dict(input_vocab_size=VOCAB + 1, output_vocab_size=VOCAB, max_seq_len=SEQ_LEN)
        args.update(kwargs)
        config = args.pop("config", tiny_config)
        return DiffusionTransformer(config, **args).eval()

    return build


@pytest.fixture(scope="module", params=["mask", "uniform"])
def source(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def teacher_ckpt(source, tmp_path_factory):
    """A tiny teacher of each source (:data:`TINY_TEACHER`), fitted three steps on :func:`tiny_synthetic`."""
    torch.manual_seed(0)
    teacher = TeacherModule(TINY_VOCAB, TINY_LEN, source=source, backbone=TINY_TEACHER,
                            optimizer=OptimizerConfig(lr=3e-2, warmup_steps=1))
    return fit_checkpoint(teacher, tmp_path_factory.mktemp(f"teacher_{source}"), 3, tiny_synthetic())
