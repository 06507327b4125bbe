"""A frozen model's own jumps, for the negatives of a compass: one step x_s -> x_{s+h} of any shapeable module.

The model computes its posterior p(x1 | x_s) or next-state kernel, the caller's :class:`JumpPolicy` makes the draw, through the step every module of
the library and its plugins offers, ``sampling_step(sampler, jump) -> step(x, t, h, generator)`` in the library's
time (t = 0 source, t = 1 data):

- a mixture-path denoiser (teacher, student, MDLM, SDTT): x_{s+h} = jump(x_s, softmax(f(x_s, s, h)), s, h, path);
- a model with a next-state kernel (SEDD): x_{s+h} = jump.transition(x_s, q(. | x_s), s, h).

A module written without the library's classes offers the same method. What a compass records of the model
(:func:`model_description`) lets a saved compass load without the model's file.
"""

from __future__ import annotations

from lightning_tsdfm.checkpoints.loading import load_module
from lightning_tsdfm.checkpoints.teacher import (
    TeacherCheckpoint,
    check_teacher_fits,
    plain_hparams,
    read_teacher,
)
from lightning_tsdfm.jumps import JumpPolicy
from lightning_tsdfm.paths import PolynomialScheduler
from lightning_tsdfm.sampling import Step
from lightning_tsdfm.shaping.protocol import check_shapeable, declared_seq_len, declared_vocab_size

#: the checkpoint kind of the library's own teacher, whose hyper-parameters already describe its path
TEACHER_KIND = "teacher"

#: t_max of a model that declares none: training times in [0, 0.999)
DEFAULT_T_MAX = 0.999


def model_samplers(model) -> tuple[str, ...]:
    """The samplers whose steps ``model`` offers (``model.samplers``; empty when it names none)."""
    return tuple(getattr(model, "samplers", ()) or ())


def check_sampler_of(model, sampler: str | None) -> None:
    """``sampler`` must be one of the model's samplers (None: its default)."""
    offered = model_samplers(model)
    if sampler is not None and offered and sampler not in offered:
        raise ValueError(f"{type(model).__name__} has no sampler {sampler!r}: choose one of {list(offered)}, "
                         f"or leave teacher_sampler unset for its default ({offered[0]!r}).")


def check_offers_steps(model, sampler: str | None = None) -> None:
    """``model`` must offer ``sampling_step`` and, when ``sampler`` is named, that sampler."""
    if not callable(getattr(model, "sampling_step", None)):
        raise TypeError(
            f"{type(model).__name__} has no `sampling_step(sampler, jump)`: add one that returns "
            f"step(x, t, h, generator) -> x_(t+h), its own reverse update from library time t to t + h drawn by `jump` "
            f"(jump(x, probs, t, h, path, generator) or jump.transition(x, kernel, t, h, generator)).")
    check_sampler_of(model, sampler)


def own_jump(model, jump: JumpPolicy, sampler: str | None = None) -> Step:
    """step(x_s, s, h, generator) -> x_{s+h}: one of ``model``'s own jumps by ``sampler`` (default: the model's
    first), drawn by ``jump``; times in the library's convention."""
    check_offers_steps(model, sampler)
    offered = model_samplers(model)
    return model.sampling_step(sampler or (offered[0] if offered else None), jump)


def model_description(model) -> dict:
    """What a compass takes from the model whose jumps it learns: the model's hyper-parameters completed with its
    declared vocabulary and length, its path's source and schedule exponent, and t_max, under the names a
    teacher's hyper-parameters use (``vocab_size``, ``seq_len``, ``source``, ``scheduler_exponent``, ``t_max``).
    ``scheduler_exponent`` is n of kappa(t) = t^n, None for another schedule (a compass then draws its training
    states on the model's own path, and scores without it)."""
    try:
        check_shapeable(model)
    except TypeError as err:
        raise TypeError(f"A compass learns the jumps of a shapeable model, and {type(model).__name__} is not one. "
                        f"{err}") from None
    scheduler = model.path.scheduler
    exponent = float(scheduler.exponent) if isinstance(scheduler, PolynomialScheduler) else None
    t_max = getattr(model, "t_max", None) or getattr(model, "hparams", {}).get("t_max") or DEFAULT_T_MAX
    return {**plain_hparams(getattr(model, "hparams", {})), "vocab_size": declared_vocab_size(model),
            "seq_len": declared_seq_len(model), "source": model.path.source.name,
            "scheduler_exponent": exponent, "t_max": float(t_max)}


def read_jumping_model(path: str, kind: str, vocab_size: int, seq_len: int, saved_hparams: dict | None = None,
                       sampler: str | None = None) -> TeacherCheckpoint:
    """The model at ``path`` (a checkpoint of ``kind``) whose jumps a compass learns, described by
    :func:`model_description`, with its weights and data card; only ``saved_hparams`` when given (a saved
    compass reloads without the model file). A ``teacher`` is read from its checkpoint as it always was."""
    if kind == TEACHER_KIND or saved_hparams is not None:
        teacher = read_teacher(path, vocab_size, seq_len, saved_hparams, kinds=kind)
        if teacher.module is not None:
            check_sampler_of(teacher.module, sampler)
        return teacher
    model = load_module(path, expected_kind=kind)
    description = model_description(model)
    check_offers_steps(model, sampler)
    check_teacher_fits(description, vocab_size, seq_len, path)
    return TeacherCheckpoint(str(path), description, model.state_dict(), getattr(model, "data_card", None), model)
