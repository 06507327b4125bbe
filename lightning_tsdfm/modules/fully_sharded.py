"""FSDP2 for the library's modules: ``configure_model()`` shards every transformer block of the networks a module
trains, then each network, with ``torch.distributed.fsdp.fully_shard``, when the run uses Lightning's
``ModelParallelStrategy`` (``--trainer.strategy=fsdp2``, registered here: every rank is a data-parallel shard).

What a module holds frozen (the teacher of a student or compass, SDTT's round teacher, the shaper's compass) is held
by reference, outside the module's submodules, so it is never sharded: each rank keeps a full copy for inference
(:func:`unsharded_copy` makes one of a sharded network), as it does of the student's EMA target
(:class:`~lightning_tsdfm.modules.ema.TargetEMA`). With any other strategy (DDP, FSDPStrategy, one device)
``configure_model`` does nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from lightning.pytorch.strategies import ModelParallelStrategy, StrategyRegistry
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor

from lightning_tsdfm.errors import UserError
from lightning_tsdfm.models.backbone import DiffusionTransformer

#: the strategy name that selects FSDP2 over all ranks
FSDP2 = "fsdp2"


class FullyShardedDataParallel(ModelParallelStrategy):
    """``ModelParallelStrategy`` whose device mesh is data-parallel over every rank of every node (no tensor
    parallelism): FSDP2 as configured by :class:`FullyShardedMixin`. Checkpoints are one file, gathered on rank 0
    (``save_distributed_checkpoint=False``), which loads anywhere; pass True for one shard per rank."""

    def __init__(self, save_distributed_checkpoint: bool = False, **kwargs) -> None:
        super().__init__(data_parallel_size="auto", tensor_parallel_size=1,
                         save_distributed_checkpoint=save_distributed_checkpoint, **kwargs)

    def setup_environment(self) -> None:
        self._data_parallel_size = self.num_nodes * self.num_processes
        super().setup_environment()


if FSDP2 not in StrategyRegistry:
    StrategyRegistry.register(FSDP2, FullyShardedDataParallel,
                              description="FSDP2 (fully_shard per transformer block) over every rank")


class FullyShardedMixin:
    """``configure_model()`` for a LightningModule whose trained networks are :class:`DiffusionTransformer`
    submodules: under ``ModelParallelStrategy``, each block, then each network, becomes an FSDP2 unit over the
    data-parallel mesh. A trainable parameter outside those networks would be neither sharded nor synchronised, and
    is refused."""

    def configure_model(self) -> None:
        mesh = getattr(self, "device_mesh", None)
        if mesh is None or getattr(self, "_fully_sharded", False):
            return  # not under ModelParallelStrategy, or already sharded (configure_model runs once per fit)
        from torch.distributed.fsdp import fully_shard

        data_parallel = mesh["data_parallel"]
        networks = [m for m in self.modules() if isinstance(m, DiffusionTransformer)]
        for network in networks:
            for block in network.blocks:
                fully_shard(block, mesh=data_parallel)
            fully_shard(network, mesh=data_parallel)
        _check_all_sharded(self, networks)
        self._fully_sharded = True


def _check_all_sharded(module: nn.Module, networks: list[nn.Module]) -> None:
    inside = {id(p) for network in networks for p in network.parameters()}
    outside = [name for name, p in module.named_parameters() if p.requires_grad and id(p) not in inside]
    if outside:
        raise UserError(f"{type(module).__name__} trains parameters outside its transformer networks ({outside[:3]}), "
                        f"which FSDP2 would leave unsynchronised: use --trainer.strategy=ddp for this module.")


def is_sharded(module: nn.Module) -> bool:
    """Whether ``module`` holds FSDP2-sharded parameters (DTensors)."""
    return any(isinstance(p, DTensor) for p in module.parameters())


def full_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """The whole of a sharded tensor (an all-gather: every rank must ask, in the same order), else the tensor."""
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def full_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` with every sharded tensor gathered whole (collective when sharded)."""
    return {name: full_tensor(value) for name, value in module.state_dict().items()}


def copy_full_into(target: torch.Tensor, full: torch.Tensor) -> None:
    """Write the whole tensor ``full`` into ``target``: for a sharded target, this rank's shard of it (every rank
    holds ``full``, so nothing is sent)."""
    with torch.no_grad():
        if isinstance(target, DTensor):
            full = distribute_tensor(full.to(target.device, target.dtype), target.device_mesh, target.placements,
                                     src_data_rank=None)
        target.copy_(full)


def tensors(module: nn.Module) -> Iterator[torch.Tensor]:
    """Parameters then buffers of ``module``, in a fixed order."""
    yield from module.parameters()
    yield from module.buffers()


def unsharded_copy(network: DiffusionTransformer) -> DiffusionTransformer:
    """A full, unsharded copy of ``network`` on its device (a deep copy when it is not sharded; FSDP2 refuses one)."""
    if not is_sharded(network):
        return copy.deepcopy(network)
    twin = DiffusionTransformer(network.config, network.input_vocab_size, network.head.out_features,
                                network.max_seq_len, step_size_conditioning=network.step_embed is not None,
                                time_conditioning=network.time_embed is not None, causal=network.causal,
                                latent_codes=network.latent_codes, latent_layers=network.latent_layers)
    twin.load_state_dict(full_state_dict(network))
    return twin.to(next(network.parameters()).device)
