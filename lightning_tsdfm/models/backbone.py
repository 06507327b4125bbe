"""DiT-style transformer denoiser: logits of p(x1 | x_t, t[, h]).

Tokens -> embedding -> N blocks of (adaLN-modulated attention with RoPE, adaLN-modulated MLP) -> adaLN ->
linear head over the data vocabulary. The conditioning vector c = emb(t) [+ emb(h)] sets a per-block
shift, scale and gate: y = x + gate * f(LN(x) * (1 + scale) + shift). Gates start at zero (adaLN-Zero),
embeddings and the output head at N(0, 0.02). The step-size embedding, when enabled for a student, has
a zero-initialised last layer, so a fresh student computes exactly what its teacher computes.
``causal=True`` with ``time_conditioning=False`` gives a plain causal LM (the project's AR judge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lightning_tsdfm.models.attention import Backend, attention
from lightning_tsdfm.models.rotary import RotaryEmbedding


@dataclass
class TransformerConfig:
    """Architecture of the backbone (the vocabulary and length come from the data).

    Args:
        hidden_size: width of the residual stream.
        num_layers: number of transformer blocks.
        num_heads: attention heads (hidden_size must be divisible by it).
        mlp_ratio: MLP width as a multiple of hidden_size.
        cond_size: width of the (t, h) conditioning vector.
        dropout: dropout on the residual branches.
        norm_weights: LayerNorms with a learned scale (MDLM's layout; default: no affine parameters).
        attention_backend: ``sdpa`` (torch, any device) or ``flash`` (flash-attn on CUDA, falls back to sdpa).
        time_scale: the time embedding's sinusoids see ``time_scale * t`` (1000: the DiT convention used here
            and by MDLM; FS-DFM's checkpoints embed t itself, 1.0).
    """

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    mlp_ratio: int = 4
    cond_size: int = 128
    dropout: float = 0.0
    norm_weights: bool = False
    attention_backend: Backend = "sdpa"
    time_scale: float = 1000.0

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {self.time_scale}.")
        if self.attention_backend not in ("sdpa", "flash"):
            raise ValueError(f"Unknown attention backend {self.attention_backend!r}: choose 'sdpa' or 'flash'.")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}.")



# Checkpoints keep the config in their hyper-parameters; allow it in `torch.load(weights_only=True)`,
# which Lightning uses when resuming (`--ckpt_path`).
torch.serialization.add_safe_globals([TransformerConfig])


def layer_norm(cfg: TransformerConfig) -> nn.LayerNorm:
    """LayerNorm over the residual width, without bias; with a learned scale only when ``cfg.norm_weights``."""
    return nn.LayerNorm(cfg.hidden_size, elementwise_affine=cfg.norm_weights, bias=False)


class TimestepEmbedding(nn.Module):
    """Sinusoidal features of a scalar in [0, 1] (multiplied by ``scale``) followed by a 2-layer MLP."""

    def __init__(self, size: int, frequencies: int = 256, zero_init_output: bool = False, scale: float = 1000.0) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.scale = scale
        self.mlp = nn.Sequential(nn.Linear(frequencies, size), nn.SiLU(), nn.Linear(size, size))
        if zero_init_output:
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, s: Tensor) -> Tensor:
        half = self.frequencies // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=s.device, dtype=torch.float32) / half)
        args = self.scale * s.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class CodeEmbedding(nn.Module):
    """The conditioning of a latent code m in {0..M-1}: W e_m, with e_m ~ N(0, I) fixed per code and W a learned
    linear map initialised at zero, so fresh codes change nothing yet differ in the direction their gradients take."""

    def __init__(self, codes: int, size: int) -> None:
        super().__init__()
        self.register_buffer("codes", torch.randn(codes, size))
        self.linear = nn.Linear(size, size)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, z: Tensor) -> Tensor:
        return self.linear(self.codes[z])


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig, rotary: RotaryEmbedding, causal: bool) -> None:
        super().__init__()
        self.causal = causal
        d = cfg.hidden_size
        self.cfg = cfg
        self.rotary = rotary
        self.norm1 = layer_norm(cfg)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.norm2 = layer_norm(cfg)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.mlp_ratio * d), nn.GELU(approximate="tanh"), nn.Linear(cfg.mlp_ratio * d, d))
        self.dropout = nn.Dropout(cfg.dropout)
        self.modulation = nn.Linear(cfg.cond_size, 6 * d)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: Tensor, c: Tensor, attn_mask: Tensor | None = None, position_ids: Tensor | None = None) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c)[:, None].chunk(6, dim=-1)
        batch, length, d = x.shape
        heads = self.cfg.num_heads
        h = self.norm1(x) * (1 + scale1) + shift1
        q, k, v = self.qkv(h).view(batch, length, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        q, k = self.rotary(q, k, position_ids)
        a = attention(q, k, v, causal=self.causal, backend=self.cfg.attention_backend, attn_mask=attn_mask)
        x = x + gate1 * self.dropout(self.proj(a.transpose(1, 2).reshape(batch, length, d)))
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + gate2 * self.dropout(self.mlp(h))


class DiffusionTransformer(nn.Module):
    """logits[B, L, V_out] = f(x_t[B, L], t[B], h[B] | None[, z]).

    ``input_vocab_size`` counts the mask id when there is one; ``output_vocab_size`` is the data vocabulary.
    ``latent_codes`` M > 0 adds a per-sequence latent code z in {0..M-1} (:class:`CodeEmbedding`) to the
    conditioning of the last ``latent_layers`` blocks and of the output layer: given z the positions are independent,
    over z the model is a mixture. The blocks before them see no code and run once for any number of codes.
    """

    def __init__(
        self,
        config: TransformerConfig,
        input_vocab_size: int,
        output_vocab_size: int,
        max_seq_len: int,
        step_size_conditioning: bool = False,
        time_conditioning: bool = True,
        causal: bool = False,
        latent_codes: int = 0,
        latent_layers: int = 0,
    ) -> None:
        super().__init__()
        if latent_codes < 0 or not 0 <= latent_layers <= config.num_layers:
            raise ValueError(f"latent_codes must be >= 0 and latent_layers in [0, num_layers={config.num_layers}], "
                             f"got {latent_codes} and {latent_layers}.")
        self.config = config
        self.input_vocab_size = input_vocab_size
        self.max_seq_len = max_seq_len
        self.causal = causal
        d = config.hidden_size
        self.embed = nn.Embedding(input_vocab_size, d)
        self.time_embed = TimestepEmbedding(config.cond_size, scale=config.time_scale) if time_conditioning else None
        self.step_embed = TimestepEmbedding(config.cond_size, zero_init_output=True) if step_size_conditioning else None
        self.code_embed = CodeEmbedding(latent_codes, config.cond_size) if latent_codes else None
        self.latent_layers = latent_layers
        self.cond_bias = nn.Parameter(torch.zeros(config.cond_size))
        rotary = RotaryEmbedding(d // config.num_heads)
        self.blocks = nn.ModuleList(Block(config, rotary, causal) for _ in range(config.num_layers))
        self.final_norm = layer_norm(config)
        self.final_modulation = nn.Linear(config.cond_size, 2 * d)
        self.head = nn.Linear(d, output_vocab_size)
        self._init_weights()
        self._checked_on_device = False  # the first forward on an accelerator checked its input values

    #: check token ids and positions on every forward on an accelerator too, not the first only (a debug aid: each
    #: check waits for the device)
    check_every_forward: bool = False

    @property
    def latent_codes(self) -> int:
        """M, the number of latent codes; 0 for a backbone without them."""
        return 0 if self.code_embed is None else len(self.code_embed.codes)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear) and module not in self._zero_init_linears():
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.zeros_(self.final_modulation.weight)
        nn.init.zeros_(self.final_modulation.bias)

    def _zero_init_linears(self) -> set[nn.Module]:
        zero = {block.modulation for block in self.blocks} | {self.final_modulation}
        if self.step_embed is not None:
            zero.add(self.step_embed.mlp[-1])
        if self.code_embed is not None:
            zero.add(self.code_embed.linear)
        return zero

    def conditioning(self, batch: int, t: Tensor | None, h: Tensor | None, device) -> Tensor:
        """The conditioning vector before its SiLU [B, cond_size]: emb(t) [+ emb(h)]."""
        c = self.cond_bias.expand(batch, -1)
        if self.time_embed is not None:
            if t is None:
                raise ValueError("This backbone is time-conditioned: pass t of shape [B].")
            c = c + self.time_embed(t)
        if self.step_embed is not None and h is not None:
            c = c + self.step_embed(h)
        return c

    def _reads_values(self, x_t: Tensor) -> bool:
        """Whether this forward checks the values of its token ids and positions: always on the CPU, where reading
        them costs nothing; on an accelerator, where reading them waits for the device, on the first forward only
        (a tokenizer that does not match the model shows there), or on every one with :attr:`check_every_forward`."""
        if x_t.device.type == "cpu" or self.check_every_forward:
            return True
        first, self._checked_on_device = not self._checked_on_device, True
        return first

    def forward(self, x_t: Tensor, t: Tensor | None = None, h: Tensor | None = None, attn_mask: Tensor | None = None,
                position_ids: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """``attn_mask``: bool [L, L] or [B, L, L], True where token i may attend to token j (on top of ``causal``);
        ``position_ids``: [L] or [B, L], the RoPE position of each token (default 0..L-1; a row may repeat positions).
        ``z``: the latent codes of a model with ``latent_codes`` (required there, refused elsewhere): [B], one per
        sequence, giving logits [B, L, V]; or [M, B], M codes per sequence, giving logits [M, B, L, V].
        ``x_t`` may be token ids [B, L] or continuous inputs [B, L, V] (float; e.g. noisy one-hot encodings), which
        enter through the embedding matrix: x_t @ embed.weight[:V]."""
        batch, length = x_t.shape[:2]
        reads_values = self._reads_values(x_t)
        if position_ids is not None:
            if position_ids.shape[-1] != length or (reads_values and position_ids.numel() and
                                                    int(position_ids.min()) < 0):
                raise ValueError(f"position_ids must be non-negative, one per token ({length}), got shape "
                                 f"{tuple(position_ids.shape)}.")
            if reads_values and position_ids.numel() and int(position_ids.max()) >= self.max_seq_len:
                raise ValueError(
                    f"Position {int(position_ids.max())} exceeds the model's max_seq_len={self.max_seq_len}; "
                    "use shorter sequences or a model built with a larger max_seq_len."
                )
        elif length > self.max_seq_len:
            raise ValueError(
                f"Sequence length {length} exceeds the model's max_seq_len={self.max_seq_len}; "
                "use shorter blocks (data.seq_len) or a model built with a larger max_seq_len."
            )
        if x_t.is_floating_point():
            if x_t.dim() != 3 or x_t.shape[-1] > self.input_vocab_size:
                raise ValueError(f"Continuous inputs must have shape [B, L, V] with V <= {self.input_vocab_size}, "
                                 f"got {tuple(x_t.shape)}.")
        elif reads_values and (x_t.min() < 0 or x_t.max() >= self.input_vocab_size):
            raise ValueError(
                f"Token ids must lie in [0, {self.input_vocab_size}) for this model, got range "
                f"[{int(x_t.min())}, {int(x_t.max())}]: the data's tokenizer does not match the model's vocabulary."
            )
        if (z is None) != (self.code_embed is None):
            raise ValueError("This backbone has latent codes: pass z of shape [B] or [M, B]." if z is None
                             else "This backbone has no latent codes: z must be None.")
        if z is not None and (z.shape[-1] != batch or z.dim() > 2):
            raise ValueError(f"z must have shape [{batch}] or [M, {batch}], got {tuple(z.shape)}.")
        c = self.conditioning(batch, t, h, x_t.device)
        x = x_t.to(self.embed.weight.dtype) @ self.embed.weight[: x_t.shape[-1]] if x_t.is_floating_point() else self.embed(x_t)
        first_coded = len(self.blocks) - (0 if z is None else self.latent_layers)
        uncoded = torch.nn.functional.silu(c)
        for block in self.blocks[:first_coded]:
            x = block(x, uncoded, attn_mask, position_ids)
        rows = 1 if z is None or z.dim() == 1 else z.shape[0]
        if z is None:
            c = uncoded
        else:  # the remaining blocks once per code: the batch repeated M times, code-major
            x, c = x.repeat(rows, 1, 1), torch.nn.functional.silu(c.repeat(rows, 1) + self.code_embed(z.reshape(-1)))
            attn_mask = attn_mask.repeat(rows, 1, 1) if attn_mask is not None and attn_mask.dim() == 3 else attn_mask
            position_ids = (position_ids.repeat(rows, 1) if position_ids is not None and position_ids.dim() == 2
                            else position_ids)
        for block in self.blocks[first_coded:]:
            x = block(x, c, attn_mask, position_ids)
        shift, scale = self.final_modulation(c)[:, None].chunk(2, dim=-1)
        logits = self.head(self.final_norm(x) * (1 + scale) + shift)
        return logits.unflatten(0, (rows, batch)) if z is not None and z.dim() == 2 else logits
