"""tsdfm-sedd: SEDD (score entropy discrete diffusion) as a lightning-tsdfm plugin.

The model owns the kernel (Euler or Tweedie tau-leaping on the absorbing or uniform graph), the library's
jump policy makes the draw. Registered under the ``lightning_tsdfm.plugins`` entry-point group.
"""

from tsdfm_sedd.graphs import GRAPHS, AbsorbingGraph, Graph, UniformGraph, make_graph
from tsdfm_sedd.module import SEDDModule
from tsdfm_sedd.noise import LogLinearNoise
from tsdfm_sedd.samplers import SAMPLERS, step_kernel

__all__ = [
    "GRAPHS",
    "SAMPLERS",
    "AbsorbingGraph",
    "Graph",
    "LogLinearNoise",
    "SEDDModule",
    "UniformGraph",
    "make_graph",
    "step_kernel",
]
__version__ = "0.1.0"
