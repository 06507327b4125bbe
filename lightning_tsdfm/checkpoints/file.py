"""A checkpoint file, read safely: ``torch.load(weights_only=True)`` rebuilds only tensors, plain Python containers
and the types in :data:`CHECKPOINT_GLOBALS` (the configs that hyper-parameters hold), after the file is checked to be
local and whole (:func:`check_checkpoint_file`): a download would be unpickled unchecked, a damaged archive loaded
with damaged weights.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch

from lightning_tsdfm.errors import UserError
from lightning_tsdfm.models.backbone import TransformerConfig

#: the non-tensor, non-container types a lightning-tsdfm checkpoint holds (the configs in its hyper-parameters):
#: :func:`allow_in_checkpoints` adds one.
CHECKPOINT_GLOBALS: list[type] = []


def allow_in_checkpoints(*types: type) -> None:
    """Let a checkpoint hold instances of ``types`` (a config saved among the hyper-parameters, e.g. the backbone's
    :class:`TransformerConfig`). Registered for the whole process (not in a context manager, whose exit would also
    drop them), so Lightning's own weights-only loads (resuming with ``--ckpt_path``) accept them too."""
    CHECKPOINT_GLOBALS.extend(t for t in types if t not in CHECKPOINT_GLOBALS)
    torch.serialization.add_safe_globals(list(types))


allow_in_checkpoints(TransformerConfig)


def unreadable_checkpoint(path, reason: str) -> UserError:
    """The error for a checkpoint file that cannot be read at all (empty, truncated, not a checkpoint)."""
    return UserError(
        f"{path} is not a readable checkpoint ({reason}): the file is truncated or corrupt, e.g. an interrupted copy "
        f"or save. Copy it again, or use another checkpoint (an earlier one in the same directory)."
    )


def is_remote(path) -> bool:
    """Whether ``path`` names a checkpoint elsewhere than in a local file: a URL (``https://``, ``s3://``,
    ``file://``, ...), an fsspec chain (``simplecache::...``) or Lightning's model registry (``registry:...``)."""
    text = str(path)
    return "://" in text or "::" in text or text.lower() == "registry" or text.lower().startswith("registry:")


def check_local_checkpoint(path) -> None:
    """Refuse a remote checkpoint (:func:`is_remote`): Lightning and torch.hub would download and unpickle it
    unchecked, so only a local file, read by :func:`read_checkpoint`, is loaded."""
    if is_remote(path):
        raise UserError(
            f"Refusing to load the checkpoint {path}: remote checkpoints (URLs such as https://, s3://, file://, or "
            f"registry:) are not loaded, as reading one unchecked could run code it holds. Download the file and pass "
            f"its local path, which is read safely (weights only, registered module classes)."
        )


def check_checkpoint_file(path: str | Path) -> None:
    """Refuse a file that cannot be a checkpoint: a remote one, a missing one, and, as ``torch.save`` writes a zip
    archive whole only with its directory at the end, an empty, truncated or random one, before torch reads it; and
    a damaged one (a flipped bit, a bad sector): every member of the archive must match the CRC-32 checksum it was
    written with (torch itself does not check them, and would load the damaged weights)."""
    check_local_checkpoint(path)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
    if path.stat().st_size == 0:
        raise unreadable_checkpoint(path, "it is empty")
    if not zipfile.is_zipfile(path):
        raise unreadable_checkpoint(path, "it is not a whole zip archive, as torch.save writes")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = next(filter(None, (_damage(archive, member) for member in archive.infolist())), None)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, ValueError) as err:
        raise unreadable_checkpoint(path, f"its zip archive is damaged: {err}") from err
    if damaged:
        raise unreadable_checkpoint(path, damaged)


def _damage(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> str | None:
    """What is wrong with ``member``, read whole and checked against its CRC-32 checksum, or None. A checksum of 0
    (written without checksums, ``torch.utils.serialization.config.save.compute_crc32 = False``, or empty) is not
    checked."""
    if member.CRC == 0:
        return None
    try:
        with archive.open(member) as f:
            while f.read(1 << 24):
                pass
    except zipfile.BadZipFile as err:
        return f"its member {member.filename} " + ("does not match its CRC-32 checksum" if "CRC" in str(err) else
                                                   f"is damaged: {err}")
    return None


def safe_load(path: Path):
    """``torch.load`` that rebuilds tensors, plain Python values and :data:`CHECKPOINT_GLOBALS` only."""
    check_checkpoint_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as err:
        raise unreadable_checkpoint(path, f"torch could not read it: {str(err).splitlines()[0][:120]}") from err
    except pickle.UnpicklingError as err:
        allowed = ", ".join(f"{g.__module__}.{g.__qualname__}" for g in CHECKPOINT_GLOBALS)
        raise ValueError(
            f"Refused to load {path}: it holds objects of classes outside the checkpoint allow-list "
            f"({_refused_objects(path, err)}), which lightning-tsdfm does not rebuild: it never unpickles arbitrary "
            f"code. A checkpoint may hold only tensors, plain Python values (numbers, strings, lists, dicts) and "
            f"{allowed}. A module that keeps a config object or a tokenizer as hyper-parameters (MDLM's Diffusion "
            f"keeps its OmegaConf config and its tokenizer) must save them as plain values: in its "
            f"on_save_checkpoint, set checkpoint['hyper_parameters'] to what its __init__ accepts in their place (the "
            f"config as OmegaConf.to_container(config, resolve=True), the tokenizer by its name), then save again."
        ) from None


#: types a pickle names only as values of a config's type records (an OmegaConf config records each entry's type):
#: harmless, and refused only with the object that records them, so a refusal does not list them
TYPE_RECORDS = frozenset({*(f"builtins.{t.__name__}" for t in (bool, bytearray, bytes, complex, dict, float, frozenset,
                                                               int, list, object, set, str, tuple, type)),
                          "builtins.NoneType", "typing.Any"})


def _refused_objects(path: Path, err: Exception) -> str:
    """The globals of ``path`` outside the allow-list, plain types that a config records left out
    (:data:`TYPE_RECORDS`), or torch's reason when it cannot list them."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - not a zip checkpoint: fall back on torch's message
        names = []
    if names:
        return ", ".join(sorted(set(names) - TYPE_RECORDS) or sorted(names))
    found = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\. Please use|\n\n|$)", str(err), re.S)
    return found.group(1).strip() if found else "objects torch could not name"
