"""A DataLoader that resumes mid-epoch: Lightning saves its ``state_dict`` in every checkpoint and hands it
back on resume, and the next epoch iterator skips the batches the interrupted run already consumed.

With an order that depends only on (seed, epoch) (``EpochSeededSampler``), a run resumed from any step sees
exactly the batches the uninterrupted run would have seen. A plain DataLoader restarts the epoch instead
(Lightning warns "your dataloader is not resumable") and trains on its first batches twice.

torchdata's ``StatefulDataLoader`` (0.11) in its place breaks that guarantee (tests/test_resume.py, measured):
a state saved after an epoch's last batch fast-forwards the next epoch to its end, so the resumed run skips an
epoch; and mid-epoch it rebuilds the sampler's order when the state is loaded, before Lightning's ``set_epoch``,
so a run resumed in epoch 1 continues with epoch 0's permutation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader


class ResumableDataLoader(DataLoader):
    """``DataLoader`` plus ``state_dict() = {"batches_consumed": n}``, n counted within the current epoch.

    Lightning asks for the state at its ``on_train_batch_end`` checkpoints, when the loop has consumed exactly
    the batches this iterator yielded. A state taken after the epoch's last batch means "start the next epoch
    from its first batch".
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._consumed = 0
        self._skip = 0

    def __iter__(self) -> Iterator:
        batches = super().__iter__()
        skip, self._skip = self._skip, 0
        for _ in range(skip):
            next(batches)
        self._consumed = skip
        for batch in batches:
            self._consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"batches_consumed": self._consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        consumed = int(state["batches_consumed"])
        self._skip = consumed if consumed < len(self) else 0
