"""FinalCheckpoint: last.ckpt holds the final optimizer step of a run that stops between two periodic saves, and a
run resumed from it continues exactly like an uninterrupted one, however the first run stopped."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning_helpers import quick_trainer

from lightning_tsdfm import FinalCheckpoint, SyntheticDataModule, TeacherModule, TransformerConfig
from lightning_tsdfm.modules.optim import OptimizerConfig


def test_last_checkpoint_holds_the_final_step(tmp_path):
    torch.manual_seed(0)
    teacher = TeacherModule(8, 8, backbone=TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, cond_size=16))
    data = SyntheticDataModule(vocab_size=8, num_states=4, seq_len=8, num_train=32, num_val=4, batch_size=4)
    callback = FinalCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=2)
    quick_trainer(tmp_path, 5, [callback]).fit(teacher, datamodule=data)  # periodic saves at steps 2 and 4
    saved = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 5
    assert torch.equal(saved["state_dict"]["net.head.weight"], teacher.state_dict()["net.head.weight"])


class _Stop(L.Callback):
    """Tells the trainer to stop at ``step``, in ``hook``: what max_time (a train batch's end) and early stopping
    (the end of a validation or of a training epoch) do."""

    def __init__(self, step: int, hook: str) -> None:
        self.step, self.hook = step, hook

    def _stop(self, trainer, hook: str) -> None:
        if hook == self.hook and trainer.global_step == self.step:
            trainer.should_stop = True

    def on_train_batch_end(self, trainer, *args) -> None:
        self._stop(trainer, "on_train_batch_end")

    def on_validation_end(self, trainer, *args) -> None:
        self._stop(trainer, "on_validation_end")

    def on_train_epoch_end(self, trainer, *args) -> None:
        self._stop(trainer, "on_train_epoch_end")


class _Batches(L.Callback):
    """Records (epoch, batch index) of every training batch."""

    def __init__(self) -> None:
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append((trainer.current_epoch, batch_idx))


def _teacher() -> TeacherModule:
    torch.manual_seed(0)
    backbone = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16)
    return TeacherModule(8, 8, backbone=backbone, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=2))


def _data() -> SyntheticDataModule:  # two batches an epoch
    return SyntheticDataModule(vocab_size=8, num_states=4, seq_len=8, num_train=8, num_val=4, batch_size=4)


def _trainer(root, callbacks, validation: dict, **limits) -> L.Trainer:
    return L.Trainer(default_root_dir=root, logger=False, enable_progress_bar=False, enable_model_summary=False,
                     num_sanity_val_steps=0, deterministic=True, callbacks=callbacks,
                     **{"max_steps": -1, "limit_val_batches": 0, **validation, **limits})


NO_VALIDATION, EPOCH_END_VALIDATION, VALIDATION_EVERY_STEP = {}, {"limit_val_batches": 1}, {"limit_val_batches": 1,
                                                                                            "val_check_interval": 1}
STOPS = {  # how the first run stops (its limits and callbacks), the validation of both runs, the step it stops at
    "max_epochs on an epoch boundary": ({"max_epochs": 1}, [], NO_VALIDATION, 2),
    "max_epochs with validation": ({"max_epochs": 1}, [], EPOCH_END_VALIDATION, 2),
    "max_steps on an epoch boundary": ({"max_steps": 2}, [], NO_VALIDATION, 2),
    "told to stop mid-epoch (max_time)": ({}, [_Stop(3, "on_train_batch_end")], NO_VALIDATION, 3),
    "told to stop on an epoch boundary (max_time)": ({}, [_Stop(2, "on_train_batch_end")], EPOCH_END_VALIDATION, 2),
    "stopped by a validation (early stopping)": ({}, [_Stop(3, "on_validation_end")], VALIDATION_EVERY_STEP, 3),
    "stopped at a training epoch's end (early stopping)": ({}, [_Stop(2, "on_train_epoch_end")], NO_VALIDATION, 2),
    "stopped at a training epoch's end, with validation": (
        {}, [_Stop(4, "on_train_epoch_end")], EPOCH_END_VALIDATION, 4),
}


@pytest.mark.parametrize("stop", list(STOPS))
def test_a_run_resumed_from_its_final_checkpoint_continues_exactly(stop, tmp_path):
    """The batches and weights of a run stopped (and saved only by FinalCheckpoint's last.ckpt), then resumed to
    step 6, are those of a run that went to step 6 at once."""
    limits, stoppers, validation, stopped_at = STOPS[stop]
    straight, straight_batches = _teacher(), _Batches()
    _trainer(tmp_path / "a", [straight_batches], validation, max_steps=6).fit(straight, datamodule=_data())

    final = FinalCheckpoint(dirpath=tmp_path / "ck", save_last=True, save_top_k=0)
    _trainer(tmp_path / "b", [final, *stoppers], validation, **limits).fit(_teacher(), datamodule=_data())
    last = tmp_path / "ck" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == stopped_at

    resumed, resumed_batches = _teacher(), _Batches()
    _trainer(tmp_path / "c", [resumed_batches], validation, max_steps=6).fit(resumed, datamodule=_data(), ckpt_path=last)
    assert resumed_batches.seen == straight_batches.seen[stopped_at:]
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), f"{name} differs after resuming"


def test_the_final_step_s_best_checkpoint_is_kept(tmp_path):
    """A top-k save that waits for the validation after the final batch (a monitored metric) still happens: the
    final save of last.ckpt does not pre-empt it."""
    final = FinalCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=1, monitor="val/nelbo", every_n_train_steps=2,
                            filename="{step}")
    validation = {"limit_val_batches": 1, "val_check_interval": 2, "check_val_every_n_epoch": None}  # steps, not epochs
    _trainer(tmp_path, [final], validation, max_steps=2).fit(_teacher(), datamodule=_data())
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["last.ckpt", "step=2.ckpt"]
