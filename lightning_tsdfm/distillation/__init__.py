from lightning_tsdfm.distillation.step_sizes import DyadicStepSizes
from lightning_tsdfm.distillation.trajectories import TRAJECTORIES, heun_target, rk4_target

__all__ = ["DyadicStepSizes", "TRAJECTORIES", "heun_target", "rk4_target"]
