"""Which training patient an image most resembles, by a verification network, and how sure it is.

An image is compared with the training images nearest to it in the verifier's embedding (its ``top_k``);
the verifier's pair head scores each pair as the logit of P(same patient), and the image's score is the
best of them, with that image's patient. The distance the family test reads is 1 - P(same patient)
(0: certainly one of the training patients), so that unseen patients' images (the holdout) give the
null distribution a lower tail is fitted to, as for copies (``metrics.tail``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

PairLogits = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Resemblance:
    """Per image: its distance 1 - P(same patient) to the most likely training patient, and which."""

    distances: torch.Tensor  # [N] float64 in [0, 1]
    train_rows: torch.Tensor  # [N] the training image (row of the training embeddings) the best pair used


@torch.no_grad()
def resemblance(
    embeddings: torch.Tensor,
    train_embeddings: torch.Tensor,
    pair_logits: PairLogits,
    *,
    top_k: int,
    chunk_size: int = 1024,
) -> Resemblance:
    """Score each of ``embeddings`` against its ``top_k`` nearest ``train_embeddings`` (Euclidean) with
    ``pair_logits`` (the verifier's head on two batches of embeddings, row by row)."""
    if top_k < 1:
        raise ValueError(f"`top_k` must be at least 1, got {top_k}")
    if len(train_embeddings) == 0:
        raise ValueError("no training images to compare with")
    k = min(top_k, len(train_embeddings))
    distances, rows = [], []
    for start in range(0, len(embeddings), chunk_size):
        chunk = embeddings[start : start + chunk_size]
        nearest = torch.cdist(chunk.float(), train_embeddings.float()).topk(k, dim=1, largest=False).indices
        logits = pair_logits(chunk.repeat_interleave(k, dim=0), train_embeddings[nearest.reshape(-1)])
        best, which = logits.reshape(len(chunk), k).max(dim=1)
        distances.append(torch.sigmoid(-best.double()))  # 1 - sigmoid(logit), without cancellation
        rows.append(nearest.gather(1, which[:, None]).squeeze(1))
    if not distances:
        return Resemblance(torch.empty(0, dtype=torch.float64), torch.empty(0, dtype=torch.long))
    return Resemblance(torch.cat(distances), torch.cat(rows))
