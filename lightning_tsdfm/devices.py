"""The ``--device`` of a command, checked against this machine before anything is loaded onto it."""

from __future__ import annotations

import torch

from lightning_tsdfm.errors import UserError


def check_device(device: str, option: str = "--device") -> torch.device:
    """``device`` as a ``torch.device``, refused when torch does not know it or this machine lacks it (torch would
    fail later, deep inside loading a checkpoint, with advice about ``map_location``)."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"{option} {device!r} is not a device: use cpu, cuda or cuda:N.") from None
    if parsed.type == "cpu":
        return parsed
    backend = getattr(torch, parsed.type, None)
    if parsed.type == "mps":
        backend = getattr(torch.backends, "mps", None)
    if backend is None or not hasattr(backend, "is_available") or not backend.is_available():
        raise UserError(f"{option} {device}: this machine has no {parsed.type} device that torch can use. Pass "
                        f"{option} cpu, or run on a machine with one.")
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if parsed.index is not None and parsed.index >= count:
        raise UserError(f"{option} {device}: this machine has {count} {parsed.type} device(s), "
                        f"{parsed.type}:0 to {parsed.type}:{count - 1}.")
    return parsed
