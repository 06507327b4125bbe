"""Conditional sampling of the plugins: MDLM (ancestral, cached), SEDD (both graphs, both samplers, guided), FLM and
FMLM (continuous states, clamped one-hots) and the OPDLM student (confidence decoding, guided, and its causal
teacher) never change a known token, over random templates."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from lightning_helpers import TINY_LEN, TINY_TEACHER, TINY_VOCAB, fit_checkpoint, tiny_synthetic
from test_conditioning import EXAMPLES, ROWS, guided, keeps, templates

from lightning_tsdfm import CausalLMModule
from lightning_tsdfm.conditioning import Given
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.modules.optim import OptimizerConfig

from conftest import randomize_

V, L = TINY_VOCAB, TINY_LEN

tsdfm_mdlm = pytest.importorskip("tsdfm_mdlm", reason="the plugins are installed by `make install`")
tsdfm_sedd = pytest.importorskip("tsdfm_sedd", reason="the plugins are installed by `make install`")
tsdfm_flm = pytest.importorskip("tsdfm_flm", reason="the plugins are installed by `make install`")
tsdfm_opdlm = pytest.importorskip("tsdfm_opdlm", reason="the plugins are installed by `make install`")


@EXAMPLES
@given(templates(), st.integers(0, 100))
def test_mdlm_keeps_the_known_tokens(known: Given, seed: int):
    mdlm = randomize_(tsdfm_mdlm.MDLMModule(V, L, backbone=TINY_TEACHER)).eval()
    for sampler in ("ancestral", "cached"):
        keeps(mdlm, known, seed, sampler=sampler)
    keeps(mdlm, known, seed, jump=guided(seed))


@pytest.mark.parametrize("graph", ["absorb", "uniform"])
@EXAMPLES
@given(known=templates(), seed=st.integers(0, 100))
def test_sedd_keeps_the_known_tokens(graph: str, known: Given, seed: int):
    sedd = randomize_(tsdfm_sedd.SEDDModule(V, L, graph=graph, backbone=TINY_TEACHER)).eval()
    for sampler in ("tweedie", "euler"):
        keeps(sedd, known, seed, sampler=sampler)
    keeps(sedd, known, seed, jump=guided(seed))


@EXAMPLES
@given(templates(), st.integers(0, 100), st.sampled_from([0.5, 1.0]))
def test_flm_keeps_the_known_one_hots(known: Given, seed: int, temperature: float):
    flm = randomize_(tsdfm_flm.FLMModule(V, L, backbone=TINY_TEACHER)).eval()
    keeps(flm, known, seed, jump=BlindJump(temperature=temperature))
    steps = []
    step = flm.tempered_step("euler", 1.0, known)
    z = tsdfm_flm.conditioning.clamp_one_hots(torch.randn(ROWS, L, V), known)
    for k in range(3):
        z = step(z, torch.full((ROWS,), k / 4), torch.full((ROWS,), 0.25))
        steps.append(z)
    one_hots = torch.nn.functional.one_hot(known.tokens, V).float()
    for z in steps:  # every intermediate state holds the known one-hots
        assert torch.equal(z[known.known], one_hots[known.known])


@pytest.fixture(scope="module")
def flm_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    flm = tsdfm_flm.FLMModule(V, L, backbone=TINY_TEACHER, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))
    return fit_checkpoint(flm, tmp_path_factory.mktemp("flm"), 1, tiny_synthetic())


@EXAMPLES
@given(templates(), st.integers(0, 100))
def test_fmlm_keeps_the_known_one_hots(flm_ckpt, known: Given, seed: int):
    fmlm = randomize_(tsdfm_flm.FMLMModule(str(flm_ckpt), V, L)).eval()
    for sampler in ("flow_map", "flow_map_g0"):
        keeps(fmlm, known, seed, steps=2, sampler=sampler)


@pytest.fixture(scope="module")
def opdlm(tmp_path_factory):
    torch.manual_seed(0)
    causal = CausalLMModule(V, L, backbone=TINY_TEACHER, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=1))
    ckpt = fit_checkpoint(causal, tmp_path_factory.mktemp("causal"), 1, tiny_synthetic())
    return tsdfm_opdlm.OPDLMModule(str(ckpt), V, L, block_size=4, steps_per_block=2).eval()


@EXAMPLES
@given(templates(), st.integers(0, 100))
def test_opdlm_keeps_the_known_tokens(opdlm, known: Given, seed: int):
    keeps(opdlm, known, seed, steps=4, sampler="confidence")
    keeps(opdlm, known, seed, steps=L, sampler="teacher")
    keeps(opdlm, known, seed, steps=4, sampler="confidence", jump=guided(seed))
