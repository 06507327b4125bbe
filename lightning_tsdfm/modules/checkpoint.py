"""Where tests and benchmark scripts import checkpoint functions from; they live in :mod:`lightning_tsdfm.checkpoints`."""

from lightning_tsdfm.checkpoints.header import canonical_kind
from lightning_tsdfm.checkpoints.loading import load_module, upgraded_hparams

__all__ = ["canonical_kind", "load_module", "upgraded_hparams"]
