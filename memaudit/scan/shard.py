"""Several processes on one scan (torchrun; one per GPU, or per machine): each rank takes a contiguous,
deterministic block of the prompts of every sharded stage (triage, membership, the extraction attack,
the generated sample, re-triggering; the holdout images of the extraction calibration), and the
blocks are gathered in rank order, so every rank ends with what one process would have computed; rank 0
judges and writes. A rank reads back from the work log only its own block, or a unit every rank has,
so ranks resuming from different folders (one per machine) still meet in every collective. Launched as

    torchrun --standalone --nproc-per-node N -m memaudit scan MODEL ... --device cuda

(each rank uses cuda:LOCAL_RANK). Without torchrun the shard is the whole scan.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1

    def bounds(self, count: int, *, unit: int = 1) -> tuple[int, int]:
        """This rank's contiguous block ``[start, stop)`` of ``count`` items, starting at a multiple of
        ``unit``: with ``unit`` from ``batch_unit`` every batch a rank runs is a batch the single process
        runs, so no kernel sees a different batch and the results agree to the last bit."""
        blocks = -(-count // unit)
        start, stop = blocks * self.rank // self.world, blocks * (self.rank + 1) // self.world
        return min(start * unit, count), min(stop * unit, count)

    def part(self, items: list, *, unit: int = 1) -> list:
        start, stop = self.bounds(len(items), unit=unit)
        return items[start:stop]

    def everyone(self, flag: bool) -> bool:
        """True on every rank when ``flag`` holds on every rank (a work-log unit that each rank must see
        before any of them skips the collective that would have made it)."""
        return flag if self.world == 1 else all(self.gather([bool(flag)]))

    def gather(self, values: list) -> list:
        """Every rank's ``values``, concatenated in rank order (all ranks get the whole list)."""
        if self.world == 1:
            return list(values)
        parts: list = [None] * self.world
        torch.distributed.all_gather_object(parts, list(values))
        return [value for part in parts for value in part]


def batch_unit(*batches: tuple[int, int]) -> int:
    """The fewest prompts after which every ``(batch size, samples per prompt)`` stream is at a batch
    boundary: the least common multiple over the streams of ``batch / gcd(batch, samples)``."""
    return math.lcm(*(batch // math.gcd(batch, samples) for batch, samples in batches))


def current_shard() -> Shard:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return Shard(rank=torch.distributed.get_rank(), world=torch.distributed.get_world_size())
    return Shard()


def join_launch(device: str) -> tuple[Shard, str]:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on CUDA), and this
    rank's device: ``cuda`` becomes ``cuda:LOCAL_RANK``. Outside torchrun: the whole scan, ``device``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Shard(), device
    cuda = torch.device(device).type == "cuda"
    if cuda and torch.device(device).index is None:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return current_shard(), device
