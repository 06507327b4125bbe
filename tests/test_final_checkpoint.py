"""FinalCheckpoint: last.ckpt holds the final optimizer step of a run that stops between two periodic saves."""

from __future__ import annotations

import torch
from lightning_helpers import quick_trainer

from lightning_tsdfm import FinalCheckpoint, SyntheticDataModule, TeacherModule, TransformerConfig


def test_last_checkpoint_holds_the_final_step(tmp_path):
    torch.manual_seed(0)
    teacher = TeacherModule(8, 8, backbone=TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, cond_size=16))
    data = SyntheticDataModule(vocab_size=8, num_states=4, seq_len=8, num_train=32, num_val=4, batch_size=4)
    callback = FinalCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=2)
    quick_trainer(tmp_path, 5, [callback]).fit(teacher, datamodule=data)  # periodic saves at steps 2 and 4
    saved = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 5
    assert torch.equal(saved["state_dict"]["net.head.weight"], teacher.state_dict()["net.head.weight"])
