"""FrozenReference: a frozen network held by reference, outside the holder's parameters and checkpoint."""

from __future__ import annotations

import torch


class FrozenReference:
    """Holds a frozen network by reference: deepcopy returns the holder itself, state_dict never sees it."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module.eval().requires_grad_(False)

    def __deepcopy__(self, memo) -> "FrozenReference":
        return self
