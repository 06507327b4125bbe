"""The private parts of Lightning the library uses still exist in the installed Lightning (pyproject pins the minor
version they were written against): each name below is used where its comment says, and a Lightning release that
drops or renames one fails here rather than deep inside a run."""

from __future__ import annotations

import importlib

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.strategies import ModelParallelStrategy


def _trainer() -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False)


def test_the_ema_callback_and_what_target_ema_reads_of_it():
    """modules/ema.py: TargetEMA subclasses EMAWeightAveraging (Lightning 2.6+) and reads or overrides these."""
    from lightning.pytorch.callbacks import EMAWeightAveraging

    ema = EMAWeightAveraging()
    for name in ("_average_model", "_device", "_use_buffers", "_kwargs"):
        assert hasattr(ema, name), name
    for name in ("_swap_models", "_copy_average_to_current", "on_load_checkpoint"):
        assert callable(getattr(EMAWeightAveraging, name, None)), name


def test_what_the_final_checkpoint_and_the_cli_use_of_model_checkpoint():
    """callbacks/final_checkpoint.py (FinalCheckpoint) and cli.py (--overwrite) use these of ModelCheckpoint."""
    checkpoint = ModelCheckpoint()
    for name in ("_last_global_step_saved", "_enable_version_counter"):
        assert hasattr(checkpoint, name), name
    for name in ("_should_skip_saving_checkpoint", "_monitor_candidates", "_save_last_checkpoint"):
        assert callable(getattr(ModelCheckpoint, name, None)), name


def test_what_the_final_checkpoint_reads_of_the_fit_loop():
    """callbacks/final_checkpoint.py reads and rewinds these of the fit loop to save the final step."""
    fit_loop = _trainer().fit_loop
    assert isinstance(getattr(type(fit_loop), "_can_stop_early", None), property)
    assert isinstance(fit_loop.epoch_loop._batches_that_stepped, int)
    assert callable(getattr(fit_loop.epoch_loop, "_num_ready_batches_reached", None))


def test_what_the_cli_overrides_and_the_modules_read():
    """cli.py: TsdfmCLI overrides LightningCLI._run_subcommand to hold the run directory while fit runs;
    modules/training.py reads LightningModule._trainer (None outside a fit) for its draws' generators."""
    assert callable(getattr(LightningCLI, "_run_subcommand", None))
    assert L.LightningModule()._trainer is None


def test_what_the_fsdp2_strategy_sets_and_the_checkpoint_io_imports():
    """modules/fully_sharded.py sets the data-parallel size; checkpoint_io.py tells local paths from remote ones."""
    assert hasattr(ModelParallelStrategy(), "_data_parallel_size")
    cloud_io = importlib.import_module("lightning.fabric.utilities.cloud_io")
    assert cloud_io._is_local_file_protocol("/tmp/x.ckpt") and not cloud_io._is_local_file_protocol("s3://b/x.ckpt")
