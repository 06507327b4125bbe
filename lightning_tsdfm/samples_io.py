"""Generate samples from a checkpoint and keep them as JSONL, one sample a line, each with its metadata."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lightning_tsdfm.atomic_file import atomic_write
from lightning_tsdfm.checkpoints.loading import load_module
from lightning_tsdfm.conditioning import Given
from lightning_tsdfm.data.decoding import decoder_from_card
from lightning_tsdfm.errors import UserError
from lightning_tsdfm.jumps import BlindJump
from lightning_tsdfm.prompts import conditions_from
from lightning_tsdfm.sample_card import CARD_KEYS, check_row
from lightning_tsdfm.shaping import GuidedJump, ShapingSettings
from lightning_tsdfm.semi_autoregressive import default_stride, sample_long
from lightning_tsdfm.shaping.compasses import load_matching_compass

DTYPES = {"float64": torch.float64, "float32": torch.float32}
#: what a sample file keeps of each sample beside its text and tokens: its prompt or template, the positions given
CONDITION_FIELDS = ("prompt", "template", "given_positions")


@dataclass
class SampleSet:
    """Token ids [N, L], their decoded texts, the metadata that produced them, and what each sample was conditioned on
    (``conditions``: per sample a dict of :data:`CONDITION_FIELDS`; empty for unconditional samples)."""

    tokens: torch.Tensor
    texts: list[str]
    meta: dict = field(default_factory=dict)
    conditions: list[dict] = field(default_factory=list)


def judge_card(card: dict) -> dict:
    """The part of a data card a judge needs (the language spec; a text judge needs only the text)."""
    return {k: v for k, v in card.items() if k in CARD_KEYS}


def generate_samples(
    checkpoint: str | Path,
    steps: int,
    num_samples: int,
    seed: int = 0,
    batch_size: int | None = None,
    dtype: str = "float64",
    device: str = "cpu",
    progress: bool = True,
    shaping: ShapingSettings | dict | None = None,
    sampler: str | None = None,
    temperature: float = 1.0,
    step_sizes: Sequence[float] | None = None,
    prompt: str | None = None,
    template: str | None = None,
    prompts: Sequence[str] | None = None,
    prompts_file: str | Path | None = None,
    given: Given | None = None,
    length: int | None = None,
    stride: int | None = None,
) -> SampleSet:
    """Load a sampler checkpoint and draw ``num_samples`` sequences in ``steps`` steps with the blind jump at
    sampling ``temperature`` (1: the model's own distribution), or, with ``shaping`` (a :class:`ShapingSettings`, or
    a dict of its names, ``{"compass": path or "oracle", "num_candidates": K, ...}``, the others taking its defaults),
    with the compass-guided jump (K candidates per step: about K times the draws and a compass forward per step),
    recorded as ``sampling_shaping`` (:meth:`ShapingSettings.as_dict` and the compass's kind). ``sampler`` names one
    of the module's samplers (``module.samplers``; default its first); ``step_sizes`` (one per step, summing to one) replaces the uniform
    grid h = 1/steps for a module whose ``sample`` takes them; what a module says about it beyond its name
    (``module.sampler_settings(sampler)``, e.g. FMLM's stochasticity g) is kept as ``sampler_settings``.

    Conditional generation (:mod:`lightning_tsdfm.prompts`): ``num_samples`` samples for each of a ``prompt`` (a
    prefix), a ``template`` (``[MASK]`` where to fill), ``prompts`` (each a prompt or template) or the lines of a
    ``prompts_file``, or each row of ``given`` (known token ids); the known tokens never change, and each sample
    records its prompt or template and the positions given. ``length`` N > seq_len generates semi-autoregressively
    in windows of seq_len positions that advance by ``stride`` tokens (default seq_len / 2), each conditioned on the
    tail of what came before (:mod:`lightning_tsdfm.semi_autoregressive`)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}.")
    if isinstance(shaping, dict):
        shaping = ShapingSettings.from_dict(shaping)
    for name, value in (("steps", steps), ("num_samples", num_samples), ("batch_size", batch_size)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be at least 1, got {value}: pass --{name} 1 or more.")
    if not temperature > 0:
        raise UserError(f"temperature must be > 0, got {temperature}: pass --temperature 1 for the model itself.")
    module = load_module(checkpoint, map_location=device)
    if not hasattr(module, "sample"):
        raise ValueError(f"{checkpoint} holds a {type(module).__name__}, which does not sample; use a teacher or student checkpoint.")
    if module.data_card is None:
        raise ValueError(f"{checkpoint} has no data card (was it trained with `tsdfm fit`?); cannot decode its samples.")
    grid = {}  # checked where it is walked (sampling.sample_chain)
    if step_sizes is not None:
        if "step_sizes" not in inspect.signature(module.sample).parameters:
            raise UserError(f"{type(module).__name__} samples on the uniform grid h = 1/steps only; drop the step sizes.")
        grid = {"step_sizes": step_sizes}
    seq_len = module.hparams.seq_len
    length = seq_len if length is None else length
    if length < 1:
        raise UserError(f"length must be at least 1, got {length}: pass --length 1 or more (default: the model's "
                        f"{seq_len}).")
    conditioned, records = _conditions(module.data_card, num_samples, length, seq_len, prompt, template, prompts,
                                       prompts_file, given)
    if (conditioned is not None or length != seq_len) and "given" not in inspect.signature(module.sample).parameters:
        raise UserError(f"{type(module).__name__} samples whole sequences of its length without conditions: drop the "
                        f"prompt, template and --length.")
    generator = torch.Generator(device=device).manual_seed(seed)
    jump = BlindJump(DTYPES[dtype], temperature)
    if shaping:
        compass = load_matching_compass(shaping.compass, module, device)
        jump = GuidedJump(compass.energies, shaping.num_candidates, shaping.selection(), jump, scores=compass.scores,
                          filler_draws=shaping.filler_draws,
                          generator=torch.Generator(device=device).manual_seed(seed + 1))
    start = time.perf_counter()
    sampler = sampler or module.samplers[0]

    def draw(window: Given | None) -> torch.Tensor:
        return module.sample(len(window) if window is not None else num_samples, steps, generator=generator,
                             batch_size=batch_size, progress=progress, jump=jump, sampler=sampler, **grid,
                             **({"given": window} if window is not None else {})).cpu()

    if conditioned is None and length == seq_len:
        tokens = draw(None)
    else:
        known = conditioned if conditioned is not None else Given.nothing(num_samples, length)
        tokens = sample_long(draw, known, seq_len, stride)
    seconds = time.perf_counter() - start
    long = {"length": length} if length != seq_len else {}
    if length > seq_len:
        long["stride"] = stride or default_stride(seq_len)
    meta = {
        "checkpoint": str(checkpoint),
        "kind": type(module).checkpoint_kind,
        "source": module.path.source.name,
        "steps": steps,
        **grid,
        "sampler": sampler,
        "sampler_settings": module.sampler_settings(sampler) if hasattr(module, "sampler_settings") else {},
        "seed": seed,
        "dtype": dtype,
        "sampling_temperature": temperature,
        **long,
        "seconds_per_sequence": seconds / len(tokens),
        "data": judge_card(module.data_card),
        "sampling_shaping": {**shaping.as_dict(), "compass_kind": compass.kind} if shaping else None,
    }
    return SampleSet(tokens, decoder_from_card(module.data_card)(tokens), meta, records)


def _conditions(card: dict, num_samples: int, length: int, seq_len: int, prompt, template, prompts, prompts_file,
                given: Given | None) -> tuple[Given | None, list[dict]]:
    """The known tokens of every sample [num_samples x conditions, length] and what each sample records of its
    condition; (None, []) when nothing is known."""
    conditions = conditions_from(card, prompt, template, list(prompts) if prompts is not None else None,
                                 prompts_file)
    if conditions and given is not None:
        raise UserError("Give the known tokens one way: as given token ids, or as a prompt, template or prompts file.")
    if conditions:
        for condition in conditions:
            condition.check_fits(length, seq_len)
        rows = [condition.given(length, num_samples) for condition in conditions]
        records = [condition.record() for condition in conditions for _ in range(num_samples)]
        return Given(torch.cat([r.tokens for r in rows]), torch.cat([r.known for r in rows])), records
    if given is None:
        return None, []
    if given.length != length:
        raise UserError(f"The given tokens cover {given.length} positions but {length} are generated: give one column "
                        f"per position (the model's seq_len, or length).")
    given = Given(given.tokens.cpu().repeat_interleave(num_samples, 0), given.known.cpu().repeat_interleave(num_samples, 0))
    return given, [{"given_positions": row.nonzero().flatten().tolist()} for row in given.known]


def check_samples_path(path: str | Path, overwrite: bool = False) -> None:
    """Refuse a sample output path that names a checkpoint (``.ckpt``), a directory, or, unless ``overwrite``, an
    existing file that is not a sample file (:func:`is_sample_file`), so a slip of the command line cannot write
    samples over a trained model or any other file."""
    path = Path(path)
    if path.suffix.lower() == ".ckpt":
        raise UserError(f"Refusing to write samples to {path}: a .ckpt path is a checkpoint. "
                        f"Write the samples to a .jsonl file (--output samples.jsonl).")
    if path.is_dir():
        raise UserError(f"Refusing to write samples to {path}: it is a directory. Name a file in it "
                        f"(--output {path / 'samples.jsonl'}).")
    if not overwrite and path.exists() and not is_sample_file(path):
        raise UserError(f"Refusing to write samples over {path}: it exists and is not a sample file (its first line "
                        f"is not a sample of `tsdfm sample`). Write them to another file, or pass --overwrite to "
                        f"replace it.")


def is_sample_file(path: str | Path) -> bool:
    """``path`` is empty, or its first line is a sample row (a JSON object with ``tokens`` and ``text``)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
            if not head.strip():
                return not f.read(1)
            if not head.lstrip().startswith(b"{"):  # a checkpoint (a zip archive), a tensor file, text, ...
                return False
            f.seek(0)
            row = json.loads(f.readline().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):  # unreadable, or not one JSON value
        return False
    return isinstance(row, dict) and "tokens" in row and "text" in row


def write_jsonl(samples: SampleSet, path: str | Path, overwrite: bool = False) -> None:
    """Write one JSON object per sample to ``path`` atomically: to a temporary file in the same directory, then
    renamed over ``path``, so a failed write leaves the previous file whole and no partial file behind. An existing
    ``path`` that is not a sample file is replaced only with ``overwrite`` (:func:`check_samples_path`)."""
    check_samples_path(path, overwrite)
    with atomic_write(path) as f:
        conditions = samples.conditions or [{}] * len(samples.texts)
        for i, (ids, text, condition) in enumerate(zip(samples.tokens.tolist(), samples.texts, conditions)):
            f.write(json.dumps({"index": i, "text": text, "tokens": ids, **condition, **samples.meta}) + "\n")


def read_jsonl(path: str | Path) -> SampleSet:
    """The samples of a JSONL file written by :func:`write_jsonl`, read as untrusted input: a malformed line, one
    whose tokens or data card are malformed or oversized (:func:`~lightning_tsdfm.sample_card.check_row`), or one
    whose data card differs from the first line's (the file's samples are judged by that card), is named by its line
    number."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Sample file {path} does not exist (write one with `tsdfm sample`).")
    rows, width, first = [], None, None
    for number, line in enumerate(path.read_bytes().split(b"\n"), 1):
        if not line.strip():
            continue
        first = first or number
        try:
            rows.append(json.loads(line.decode("utf-8")))
        except UnicodeDecodeError as err:
            raise UserError(f"{path}, line {number}: not valid UTF-8 (byte 0x{line[err.start]:02x} at column "
                            f"{err.start + 1}). Fix or delete that line, or write the file again with `tsdfm sample`.") from err
        except json.JSONDecodeError as err:
            raise UserError(f"{path}, line {number}: not valid JSON ({err.msg}, column {err.colno}). Fix or delete "
                            f"that line, or write the file again with `tsdfm sample`.") from err
        except RecursionError:
            raise UserError(f"{path}, line {number}: JSON nested too deeply to read, which `tsdfm sample` never "
                            f"writes. Fix or delete that line, or write the file again with `tsdfm sample`.") from None
        if not isinstance(rows[-1], dict) or "tokens" not in rows[-1] or "text" not in rows[-1]:
            raise UserError(f"{path}, line {number}: every line needs 'tokens' and 'text' fields, as `tsdfm sample` "
                            f"writes them.")
        width = check_row(rows[-1], f"{path}, line {number}", width)
        if rows[-1].get("data") != rows[0].get("data"):
            raise UserError(f"{path}, line {number}: its data card ('data') differs from line {first}'s: the file mixes "
                            f"samples of different languages or corpora, which one judge cannot score. Keep each "
                            f"`tsdfm sample` output in its own file.")
    if not rows:
        raise UserError(f"Sample file {path} is empty: write samples into it with `tsdfm sample`.")
    meta = {k: v for k, v in rows[0].items() if k not in ("index", "text", "tokens", *CONDITION_FIELDS)}
    conditions = [{k: r[k] for k in CONDITION_FIELDS if k in r} for r in rows]
    return SampleSet(torch.tensor([r["tokens"] for r in rows]), [r["text"] for r in rows], meta,
                     conditions if any(conditions) else [])
