"""Per-item scores over a long list, a chunk at a time: each chunk is read back from a killed run's work
log, or split among the ranks of a sharded scan, scored, gathered in rank order and logged."""

from __future__ import annotations

from collections.abc import Callable

import torch

from memaudit.scan.context import PROMPT_CHUNK, ScanContext


def chunked_scores(
    context: ScanContext,
    count: int,
    *,
    unit: str,
    align: int,
    score: Callable[[int, int], torch.Tensor],
    skipped: Callable[[int], None],
) -> torch.Tensor:
    """``[count]`` float64 scores: ``score(first, last)`` scores items ``first:last`` (this rank's block of
    a chunk, starting at a multiple of ``align`` so its batches are the single process's); ``skipped(n)``
    is told of the ``n`` items of a chunk read back from the work log under ``<unit>-<start>``."""
    scores = []
    for start in range(0, count, PROMPT_CHUNK):
        saved = context.work.get(f"{unit}-{start}") if context.work else None
        if context.shard.everyone(saved is not None):  # a rank without it would wait in the gather alone
            skipped(len(saved))
        else:
            first, last = (
                start + bound for bound in context.shard.bounds(min(PROMPT_CHUNK, count - start), unit=align)
            )
            mine = score(first, last).double().tolist() if last > first else []
            saved = context.shard.gather(mine)
            if context.work:
                context.work.put(f"{unit}-{start}", saved)
        scores.append(torch.tensor(saved, dtype=torch.float64))
    return torch.cat(scores) if scores else torch.empty(0, dtype=torch.float64)
