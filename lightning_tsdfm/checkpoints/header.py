"""The header of a lightning-tsdfm checkpoint, ``checkpoint["tsdfm"]``, written by every module of the library and
read by every loader: ``kind`` (the module's ``checkpoint_kind``, words joined by ``_``), ``class_path`` (its class)
and ``data_card`` (what it was trained on: :mod:`lightning_tsdfm.modules.data_card`)."""

from __future__ import annotations

from lightning_tsdfm.errors import UserError

#: the kind of a causal LM's checkpoint (:class:`~lightning_tsdfm.modules.CausalLMModule`), which judges and
#: energies load by kind
CAUSAL_LM_KIND = "causal_lm"
#: the kind of a path LM's checkpoint (:class:`~lightning_tsdfm.modules.PathLMModule`), which the compass loader
#: accepts beside a compass's
PATH_LM_KIND = "path_lm"


def write_header(checkpoint: dict, module) -> None:
    """Write ``module``'s header into the checkpoint dict Lightning is saving."""
    checkpoint["tsdfm"] = {
        "kind": module.checkpoint_kind,
        "class_path": f"{type(module).__module__}.{type(module).__qualname__}",
        "data_card": getattr(module, "data_card", None),
    }


def canonical_kind(kind):
    """A checkpoint kind in its one spelling, words joined by ``_`` (earlier versions wrote ``mdlm-sdtt``)."""
    return kind.replace("-", "_") if isinstance(kind, str) else kind


def header_of(checkpoint, where) -> dict:
    """The header of a loaded checkpoint dict, its kind in the one spelling; one without a header was not written by
    `tsdfm fit` and is refused."""
    header = checkpoint.get("tsdfm") if isinstance(checkpoint, dict) else None
    if not isinstance(header, dict):
        raise UserError(f"{where} is not a lightning-tsdfm checkpoint (no 'tsdfm' header): use a checkpoint "
                        f"written by `tsdfm fit`.")
    header["kind"] = canonical_kind(header.get("kind"))
    return header


def check_resumed_kind(header: dict, module_class: type, where) -> None:
    """A run resumed from a checkpoint (``--ckpt_path``) must train a module of the checkpoint's kind."""
    kind = canonical_kind(module_class.checkpoint_kind)
    if canonical_kind(header.get("kind")) != kind:
        raise UserError(
            f"{where} is a {header.get('kind')!r} checkpoint, but this run trains a {module_class.__name__} "
            f"({kind!r}): resume from a {kind!r} checkpoint of the same config (a teacher is given as "
            f"--model.init_args.teacher_checkpoint, not --ckpt_path)."
        )


def checkpoint_name(module) -> str:
    """The checkpoint a module is being restored from, as far as it knows."""
    trainer = getattr(module, "_trainer", None)
    path = getattr(trainer, "ckpt_path", None) if trainer is not None else None
    return str(path) if path else "The checkpoint"
