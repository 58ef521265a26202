"""Image-text alignment: mean cosine between each image's embedding and its report's embedding.

Both embeddings live in a joint space (BioViL-T's 128-d projection). A report's embedding is the
normalised mean of its sentences' embeddings. Higher is better.
"""

from __future__ import annotations

import torch


def alignment_score(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> float:
    """Mean over pairs of cos(image_i, text_i); ``[N, D]`` each, row i of one belonging to row i of the other."""
    if image_embeddings.shape != text_embeddings.shape or image_embeddings.dim() != 2 or not len(image_embeddings):
        raise ValueError(
            f"need matching [N, D] embeddings with N >= 1, got {tuple(image_embeddings.shape)} "
            f"and {tuple(text_embeddings.shape)}"
        )
    cosine = torch.nn.functional.cosine_similarity(image_embeddings.double(), text_embeddings.double(), dim=1)
    return float(cosine.mean())


def mean_sentence_embedding(sentence_embeddings: torch.Tensor) -> torch.Tensor:
    """One report embedding from its ``[S, D]`` sentence embeddings: the normalised mean."""
    return torch.nn.functional.normalize(sentence_embeddings.double().mean(dim=0), dim=0)
