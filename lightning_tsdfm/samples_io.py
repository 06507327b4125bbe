"""Generate samples from a checkpoint and keep them as JSONL, one sample a line, each with its metadata."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lightning_tsdfm.data.decoding import decoder_from_card
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.modules.loading import load_module
from lightning_tsdfm.shaping import GuidedJump, make_selection
from lightning_tsdfm.shaping.compasses import load_matching_compass

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class SampleSet:
    """Token ids [N, L], their decoded texts, and the metadata that produced them."""

    tokens: torch.Tensor
    texts: list[str]
    meta: dict = field(default_factory=dict)


def judge_card(card: dict) -> dict:
    """The part of a data card a judge needs (the language spec; a text judge needs only the text)."""
    keep = ("kind", "vocab_size", "seq_len", "hmm", "corpus")
    return {k: v for k, v in card.items() if k in keep}


def generate_samples(
    checkpoint: str | Path,
    steps: int,
    num_samples: int,
    seed: int = 0,
    batch_size: int | None = None,
    dtype: str = "float64",
    device: str = "cpu",
    progress: bool = True,
    shaping: dict | None = None,
    sampler: str | None = None,
    temperature: float = 1.0,
) -> SampleSet:
    """Load a sampler checkpoint and draw ``num_samples`` sequences in ``steps`` steps with the blind jump at
    sampling ``temperature`` (1: the model's own distribution), or, with ``shaping={"compass": path or "oracle",
    "k": K, "policy": ..., "selection_temperature": ...}``, with the compass-guided jump (K candidates per step:
    about K times the draws and a compass forward per step). ``sampler`` names one of the module's samplers
    (``module.samplers``; default its first)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}.")
    module = load_module(checkpoint, map_location=device)
    if not hasattr(module, "sample"):
        raise ValueError(f"{checkpoint} holds a {type(module).__name__}, which does not sample; use a teacher or student checkpoint.")
    if module.data_card is None:
        raise ValueError(f"{checkpoint} has no data card (was it trained with `tsdfm fit`?); cannot decode its samples.")
    generator = torch.Generator(device=device).manual_seed(seed)
    jump = BlindJump(DTYPES[dtype], temperature)
    if shaping:
        compass = load_matching_compass(shaping["compass"], module, device)
        selection = make_selection(shaping.get("policy", "argmin"), shaping.get("selection_temperature", 1.0))
        jump = GuidedJump(compass.energies, shaping.get("k", 4), selection, jump)
        jump.generator = torch.Generator(device=device).manual_seed(seed + 1)
    start = time.perf_counter()
    sampler = sampler or module.samplers[0]
    tokens = module.sample(num_samples, steps, generator=generator, batch_size=batch_size, progress=progress, jump=jump,
                           sampler=sampler).cpu()
    seconds = time.perf_counter() - start
    meta = {
        "checkpoint": str(checkpoint),
        "kind": type(module).checkpoint_kind,
        "source": module.path.source.name,
        "steps": steps,
        "sampler": sampler,
        "seed": seed,
        "dtype": dtype,
        "sampling_temperature": temperature,
        "seconds_per_sequence": seconds / num_samples,
        "data": judge_card(module.data_card),
        "sampling_shaping": shaping,
    }
    return SampleSet(tokens, decoder_from_card(module.data_card)(tokens), meta)


def write_jsonl(samples: SampleSet, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for i, (ids, text) in enumerate(zip(samples.tokens.tolist(), samples.texts)):
            f.write(json.dumps({"index": i, "text": text, "tokens": ids, **samples.meta}) + "\n")


def read_jsonl(path: str | Path) -> SampleSet:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Sample file {path} does not exist (write one with `tsdfm sample`).")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"Sample file {path} is empty.")
    if any("tokens" not in r or "text" not in r for r in rows):
        raise ValueError(f"{path}: every line needs 'tokens' and 'text' fields, as `tsdfm sample` writes them.")
    meta = {k: v for k, v in rows[0].items() if k not in ("index", "text", "tokens")}
    return SampleSet(torch.tensor([r["tokens"] for r in rows]), [r["text"] for r in rows], meta)
