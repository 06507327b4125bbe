"""A run interrupted at a checkpoint and resumed ends with the same weights as an uninterrupted one, whether
the checkpoint was taken at an epoch boundary or mid-epoch (ResumableDataLoader), with gradient accumulation too,
whose micro-batches draw their own noise."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_tsdfm import SyntheticDataModule, TeacherModule, TransformerConfig
from lightning_tsdfm.modules import load_module
from lightning_tsdfm.modules.optim import OptimizerConfig
from lightning_tsdfm.seeding import derived_generator
from lightning_tsdfm.time_draws import draw_times

BATCHES_PER_EPOCH = 2


def _datamodule(batches_per_epoch: int = BATCHES_PER_EPOCH) -> SyntheticDataModule:
    return SyntheticDataModule(vocab_size=8, num_states=4, seq_len=8, num_train=4 * batches_per_epoch,
                               num_val=4, batch_size=4)


def _teacher(source: str) -> TeacherModule:
    torch.manual_seed(0)
    backbone = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16)
    return TeacherModule(vocab_size=8, seq_len=8, source=source, backbone=backbone, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=2))


def _trainer(root, max_steps: int, callbacks=(), **kwargs) -> L.Trainer:
    return L.Trainer(max_steps=max_steps, default_root_dir=root, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, limit_val_batches=0, callbacks=list(callbacks), deterministic=True,
                     **kwargs)


def test_resume_from_epoch_boundary_gives_the_same_weights(tmp_path):
    for source in ("mask", "uniform"):
        straight = _teacher(source)
        _trainer(tmp_path / f"{source}_a", 3 * BATCHES_PER_EPOCH).fit(straight, datamodule=_datamodule())

        checkpoint = ModelCheckpoint(dirpath=tmp_path / f"{source}_ck", every_n_train_steps=BATCHES_PER_EPOCH,
                                     save_top_k=-1, filename="{step}")
        _trainer(tmp_path / f"{source}_b", BATCHES_PER_EPOCH, [checkpoint]).fit(_teacher(source), datamodule=_datamodule())
        first_half = tmp_path / f"{source}_ck" / f"step={BATCHES_PER_EPOCH}.ckpt"
        assert first_half.is_file()

        resumed = _teacher(source)
        _trainer(tmp_path / f"{source}_c", 3 * BATCHES_PER_EPOCH).fit(resumed, datamodule=_datamodule(), ckpt_path=first_half)

        _assert_same_weights(straight, resumed, source)


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module, what: str) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), f"{what}: {name} differs after resume"


def test_resume_mid_epoch_and_twice_within_an_epoch_gives_the_same_weights(tmp_path):
    per_epoch, total = 4, 10  # interruptions after steps 5 and 6 (epoch 1, batches 1 and 2), and after 8 (epoch end)
    straight = _teacher("mask")
    _trainer(tmp_path / "a", total).fit(straight, datamodule=_datamodule(per_epoch))
    for stops in ([5], [5, 6], [8]):
        ckpt = None
        for i, stop in enumerate([*stops, total]):
            saver = ModelCheckpoint(dirpath=tmp_path / f"ck{stops}", every_n_train_steps=1, save_top_k=-1, filename="{step}")
            module = _teacher("mask")
            _trainer(tmp_path / f"b{stops}{i}", stop, [saver]).fit(module, datamodule=_datamodule(per_epoch), ckpt_path=ckpt)
            ckpt = tmp_path / f"ck{stops}" / f"step={stop}.ckpt"
            assert torch.load(ckpt, weights_only=False)["loops"]["fit_loop"]["state_dict"].get("combined_loader"), "no loader state saved"
        _assert_same_weights(straight, module, f"stopped at {stops}")


def test_checkpoint_reloads_as_a_teacher_with_its_data_card(tmp_path):
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)
    module = _teacher("mask")
    _trainer(tmp_path, 1, [checkpoint]).fit(module, datamodule=_datamodule())
    loaded = load_module(tmp_path / "ck" / "last.ckpt", expected_kind="teacher")
    assert isinstance(loaded, TeacherModule)
    assert loaded.data_card == _datamodule().data_card()
    for (name, a), (_, b) in zip(module.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_final_checkpoint_at_an_epoch_boundary_resumes_exactly(tmp_path):
    """A run whose max_steps ends an epoch, saved only by FinalCheckpoint's last.ckpt (no step save at that step),
    resumed to a later step, ends with the weights of an uninterrupted run."""
    from lightning_tsdfm import FinalCheckpoint

    total = 3 * BATCHES_PER_EPOCH
    straight = _teacher("mask")
    _trainer(tmp_path / "a", total).fit(straight, datamodule=_datamodule())
    final = FinalCheckpoint(dirpath=tmp_path / "ck", save_last=True, save_top_k=0)
    _trainer(tmp_path / "b", BATCHES_PER_EPOCH, [final]).fit(_teacher("mask"), datamodule=_datamodule())
    resumed = _teacher("mask")
    _trainer(tmp_path / "c", total).fit(resumed, datamodule=_datamodule(), ckpt_path=tmp_path / "ck" / "last.ckpt")
    _assert_same_weights(straight, resumed, "resumed from the final last.ckpt")


class TimesTeacher(TeacherModule):
    """A teacher that records the times t [B] each training batch draws."""

    def path_sample(self, x1, generator):
        t, x_t = super().path_sample(x1, generator)
        if self.training:
            self.drawn.append(t)
        return t, x_t


def _times_teacher() -> TimesTeacher:
    torch.manual_seed(0)
    backbone = TransformerConfig(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, cond_size=16)
    teacher = TimesTeacher(vocab_size=8, seq_len=8, backbone=backbone, optimizer=OptimizerConfig(lr=1e-2, warmup_steps=2))
    teacher.drawn = []
    return teacher


def test_accumulated_micro_batches_draw_their_own_noise_and_resume_exactly(tmp_path):
    """accumulate_grad_batches = 2: the two micro-batches of an optimizer step draw different times (the training
    generator counts the micro-batch); the first draws as without accumulation, from (seed, step, rank) alone; a run
    resumed mid-epoch ends with the weights of an uninterrupted one."""
    per_epoch, total = 4, 4  # two optimizer steps an epoch
    straight = _times_teacher()
    _trainer(tmp_path / "a", total, accumulate_grad_batches=2).fit(straight, datamodule=_datamodule(per_epoch))
    assert len(straight.drawn) == 2 * total
    for step in range(total):
        first, second = straight.drawn[2 * step: 2 * step + 2]
        assert not torch.equal(first, second), f"step {step}: both micro-batches drew the same times"
        expected = draw_times(len(first), derived_generator(straight.seed, step), "cpu", straight.t_max,
                              straight.antithetic)
        assert torch.equal(first, expected)

    unaccumulated = _times_teacher()
    _trainer(tmp_path / "u", 2).fit(unaccumulated, datamodule=_datamodule(per_epoch))
    for step, t in enumerate(unaccumulated.drawn):  # as (seed, step, rank) always drew
        assert torch.equal(t, draw_times(len(t), derived_generator(unaccumulated.seed, step), "cpu", unaccumulated.t_max,
                                         unaccumulated.antithetic))

    saver = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=1, save_top_k=-1, filename="{step}")
    _trainer(tmp_path / "b", 1, [saver], accumulate_grad_batches=2).fit(_times_teacher(), datamodule=_datamodule(per_epoch))
    resumed = _times_teacher()
    _trainer(tmp_path / "c", total, accumulate_grad_batches=2).fit(resumed, datamodule=_datamodule(per_epoch),
                                                                   ckpt_path=tmp_path / "ck" / "step=1.ckpt")
    assert len(resumed.drawn) == 2 * (total - 1) and all(map(torch.equal, resumed.drawn, straight.drawn[2:]))
    _assert_same_weights(straight, resumed, "resumed mid-epoch with accumulation")
