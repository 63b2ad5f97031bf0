"""Data-parallel training: the process group from ``torchrun``'s environment, and global batches split across ranks.

``augane train`` runs as one process, or as ``torchrun --nproc-per-node N``
processes (one per GPU; gloo on CPU). Every rank runs the same steps on
its part of the same *global* batch of ``train.batch_size`` samples:

* :class:`RankBatchSampler` cuts each batch of :class:`ShardBatchSampler`
  (built for one replica, so the batches do not depend on N) into N
  contiguous parts, one per rank. Every sample of an epoch is trained on
  exactly once, by exactly one rank, and a run on N processes sees the same
  global batches as a run on one.
* Each rank scales its loss (a mean over its part) by
  ``N * part_size / global_size`` before the backward pass; DistributedDataParallel
  averages the gradients over the N ranks, so the gradient is that of the
  mean loss over the global batch, as in a single process.
* A rank whose part would be empty (a last batch smaller than N) gets one
  sample of the batch as a stand-in with weight 0, so that every rank still
  takes part in every gradient reduction.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from augane.errors import ConfigError
from augane.train.dataset import ShardBatchSampler

log = logging.getLogger(__name__)


@dataclass
class RankPart:
    """One rank's part of a global batch.

    Attributes:
        indices: dataset indices this rank reads (a stand-in sample when ``size`` is 0).
        size: real samples among them.
        global_size: samples of the whole global batch.
    """

    indices: list[int]
    size: int
    global_size: int

    def loss_scale(self, world_size: int) -> float:
        """Factor on this rank's mean loss so that DDP's gradient average is the global batch mean's gradient."""
        return world_size * self.size / self.global_size


class RankBatchSampler(Sampler[list[int]]):
    """This rank's parts of the global batches of a single-replica :class:`ShardBatchSampler`.

    Args:
        batches: the global batch sampler (``num_replicas=1``).
        num_replicas, rank: the process group.
    """

    def __init__(self, batches: ShardBatchSampler, num_replicas: int = 1, rank: int = 0) -> None:
        if batches.num_replicas != 1:
            raise ValueError("RankBatchSampler splits the global batches itself: build ShardBatchSampler with one replica")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.batches = batches
        self.num_replicas = num_replicas
        self.rank = rank
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (and start again from its first batch)."""
        self.batches.set_epoch(epoch)
        self.start = 0

    def set_start(self, position: int) -> None:
        """Skip the first ``position`` batches of the epoch (resuming inside an epoch)."""
        self.start = position

    def parts(self) -> list[RankPart]:
        """This rank's part of every global batch of the epoch, from the first on."""
        parts = []
        for batch in self.batches:
            batch = np.asarray(batch, dtype=np.int64)
            piece = np.array_split(batch, self.num_replicas)[self.rank]
            if piece.size:
                parts.append(RankPart(piece.tolist(), int(piece.size), int(batch.size)))
            else:
                parts.append(RankPart([int(batch[0])], 0, int(batch.size)))
        return parts

    def __iter__(self) -> Iterator[list[int]]:
        for part in self.parts()[self.start:]:
            yield part.indices

    def __len__(self) -> int:
        """Global batches in an epoch (the same on every rank)."""
        return len(self.batches)


@dataclass
class ProcessGroup:
    """Where this process stands in data-parallel training.

    Attributes:
        rank, world_size, local_rank: from torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``.
        device: this process's device (``cuda:<local_rank>`` on GPUs).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes files."""
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: torch.device, timeout_minutes: float = 30.0) -> ProcessGroup:
        """Join the group described by torchrun's environment (one process when ``WORLD_SIZE`` is unset or 1).

        nccl on CUDA (one GPU per process, by ``LOCAL_RANK``), gloo on CPU.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if world_size <= 1:
            return cls(0, 1, 0, device)
        if device.type == "cuda":
            if local_rank >= torch.cuda.device_count():
                raise ConfigError(
                    f"torchrun started {os.environ.get('LOCAL_WORLD_SIZE', '?')} processes on this node but only "
                    f"{torch.cuda.device_count()} GPUs are visible; use --nproc-per-node <= the GPU count"
                )
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
            backend = "nccl"
        else:
            backend = "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_minutes))
        log.info("rank %d of %d (%s backend) on %s", rank, world_size, backend, device)
        return cls(rank, world_size, local_rank, device)

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum of ``values`` over the ranks (the tensor itself in one process)."""
        if not self.distributed:
            return values
        reduced = values.to(self.device if dist.get_backend() == "nccl" else "cpu").clone()
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
        return reduced.to(values.device)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank."""
        if not self.distributed:
            return flag
        return bool(self.all_reduce_sum(torch.tensor([1.0 if flag else 0.0], dtype=torch.float64)).item() > 0)

    def gather_objects(self, value: Any) -> list[Any]:
        """``value`` of every rank, in rank order (a one-element list in one process)."""
        if not self.distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def broadcast_object(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        if not self.distributed:
            return value
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group."""
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()
