"""Per-sample random streams: sample k of a run always gets the same noise, however it is batched."""

from __future__ import annotations

import hashlib

import torch


def sample_seed(seed: int, stream: str, index: int) -> int:
    """A 63-bit seed for sample ``index`` of a named stream ("probe", "extraction", ...)."""
    digest = hashlib.sha256(f"{seed}:{stream}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def initial_latents(shape: tuple[int, ...], seeds: list[int], *, dtype=torch.float32) -> torch.Tensor:
    """``[len(seeds), *shape]`` standard normal latents, each drawn from its own seed on the CPU."""
    latents = [torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32) for seed in seeds]
    return torch.stack(latents).to(dtype) if latents else torch.empty(0, *shape, dtype=dtype)
