from lightning_tsdfm.distillation.step_sizes import DyadicStepSizes
from lightning_tsdfm.distillation.trajectories import TRAJECTORIES, check_trajectory, heun_target, rk4_target

__all__ = ["DyadicStepSizes", "TRAJECTORIES", "check_trajectory", "heun_target", "rk4_target"]
