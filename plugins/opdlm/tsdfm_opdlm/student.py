"""The block-diffusion student: the causal LM's transformer with one [MASK] row and block-causal attention.

Converting a causal LM (``student_from_causal``): the same weights, the input embedding grown by one row for the
mask id V (initialised to the mean of the V token embeddings), attention switched from causal to the block
visibility of :mod:`tsdfm_opdlm.block_attention`, no time conditioning (the causal LM's constant conditioning,
``cond_bias`` and the adaLN layers, is kept as it is). The head is unchanged: the logits at a masked position
predict the token at that position (not the next one).

The two forwards the student makes (any ``net(tokens, attn_mask=, position_ids=)`` returning [B, n, V] logits:
the library's transformer, or a Hugging Face causal LM adapted by :mod:`tsdfm_opdlm.hf_causal_lm`):

- ``block_logits``: the rollout row [prompt | x_{< (b+1)B}] (future blocks cut off), logits of block b;
- ``doubled_logits``: the training row [prompt | x0 | x_t], logits of every noisy block at once.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_tsdfm.models import DiffusionTransformer, TransformerConfig
from tsdfm_opdlm.block_attention import block_causal_mask, doubled_mask, doubled_positions


def block_diffusion_transformer(config: TransformerConfig, vocab_size: int, max_seq_len: int) -> DiffusionTransformer:
    """A fresh student (embeddings and head N(0, 0.02)): inputs V + 1 ids (the mask id is V), outputs V logits."""
    return DiffusionTransformer(config, vocab_size + 1, vocab_size, max_seq_len, time_conditioning=False, causal=False)


def student_from_causal(causal: DiffusionTransformer) -> DiffusionTransformer:
    """The converted student: ``causal``'s weights, one [MASK] embedding row (the mean embedding), no causal flag."""
    if not causal.causal or causal.time_embed is not None:
        raise ValueError("student_from_causal converts a causal, time-unconditioned transformer (a CausalLMModule's net).")
    vocab = causal.input_vocab_size
    student = block_diffusion_transformer(causal.config, vocab, causal.max_seq_len)
    state = dict(causal.state_dict())
    embed = state["embed.weight"]
    state["embed.weight"] = torch.cat([embed, embed.mean(0, keepdim=True)])
    student.load_state_dict(state, strict=True)
    return student


def block_logits(net: nn.Module, prompt: Tensor, x: Tensor, block: int, block_size: int) -> Tensor:
    """Logits [B, block_size, V] of block ``block`` of the completion ``x`` [B, L], read from the rollout row
    [prompt | x_{< (block + 1) B}] with block-causal visibility."""
    end = (block + 1) * block_size
    row = torch.cat([prompt, x[:, :end]], dim=1)
    mask = block_causal_mask(prompt.shape[1], end, block_size, x.device)
    return net(row, attn_mask=mask)[:, prompt.shape[1] + end - block_size:]


def doubled_logits(net: nn.Module, prompt: Tensor, x0: Tensor, x_t: Tensor, block_size: int) -> Tensor:
    """Logits [B, L, V] at the noisy tokens of the row [prompt | x0 | x_t]: block b of x_t read with the clean
    blocks of x0 before b as its prefix."""
    prompt_len, length = prompt.shape[1], x0.shape[1]
    row = torch.cat([prompt, x0, x_t], dim=1)
    mask = doubled_mask(prompt_len, length, block_size, x0.device)
    return net(row, attn_mask=mask, position_ids=doubled_positions(prompt_len, length, x0.device))[:, prompt_len + length:]
