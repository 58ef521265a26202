"""What a prompt becomes before the denoiser reads it, the same shape of object for every family.

SD 1.x/2.x reads one ``[P, L, D]`` tensor of token states; SDXL adds a pooled embedding per prompt;
SD 3.x and Flux a pooled CLIP embedding beside T5's tokens; PixArt and Sana an attention mask over
their tokens. A ``Conditioning`` holds those rows together so that a check can select, repeat,
concatenate and perturb prompts without asking which family it runs on. Row i of every field
belongs to prompt i.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class Conditioning:
    tokens: torch.Tensor  # [P, L, D] the text encoder's token states, as the denoiser reads them
    pooled: torch.Tensor | None = None  # [P, D'] a pooled text embedding (SDXL, SD 3.x, Flux)
    mask: torch.Tensor | None = None  # [P, L] which tokens the denoiser attends to (PixArt, Sana)

    def __post_init__(self) -> None:
        for name, field in (("pooled", self.pooled), ("mask", self.mask)):
            if field is not None and field.shape[0] != self.tokens.shape[0]:
                raise ValueError(f"`{name}` has {field.shape[0]} rows but `tokens` has {self.tokens.shape[0]}")

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __iter__(self) -> Iterator[Conditioning]:
        """One single-prompt conditioning per row."""
        return (self[[row]] for row in range(len(self)))

    def __getitem__(self, rows: Sequence[int] | slice) -> Conditioning:
        """The chosen rows (a list of indices, repeats allowed, or a slice)."""
        return self._each(lambda tensor: tensor[rows], lambda mask: mask[rows])

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    def to(self, device=None, dtype: torch.dtype | None = None) -> Conditioning:
        """On ``device``; the float fields in ``dtype`` (a mask keeps its own type)."""
        return self._each(lambda tensor: tensor.to(device, dtype), lambda mask: mask.to(device))

    def repeat(self, count: int) -> Conditioning:
        """Every row ``count`` times, rows in order then repeated (``torch.Tensor.repeat`` on dim 0)."""
        return self._each(lambda tensor: tensor.repeat(count, *[1] * (tensor.dim() - 1)), None)

    def broadcast(self, count: int) -> Conditioning:
        """A single-prompt conditioning (the empty prompt) as ``count`` rows."""
        if len(self) != 1:
            raise ValueError(f"only a single prompt broadcasts, this conditioning has {len(self)}")
        return self.repeat(count)

    def map_float(self, change: Callable[[torch.Tensor], torch.Tensor]) -> Conditioning:
        """``change`` applied to each float field (tokens and pooled), the mask kept: a perturbation."""
        return replace(self, tokens=change(self.tokens), pooled=None if self.pooled is None else change(self.pooled))

    def float_fields(self) -> list[torch.Tensor]:
        return [self.tokens] if self.pooled is None else [self.tokens, self.pooled]

    def with_float_fields(self, fields: list[torch.Tensor]) -> Conditioning:
        """The same conditioning with its float fields replaced, in ``float_fields`` order."""
        return replace(self, tokens=fields[0], pooled=fields[1] if self.pooled is not None else None)

    @staticmethod
    def cat(parts: Sequence[Conditioning]) -> Conditioning:
        """Rows of ``parts`` one after the other (the parts must come from one encoder)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        pooled = torch.cat([part.pooled for part in parts]) if first.pooled is not None else None
        mask = torch.cat([part.mask for part in parts]) if first.mask is not None else None
        return Conditioning(tokens=torch.cat([part.tokens for part in parts]), pooled=pooled, mask=mask)

    def _each(self, on_float: Callable, on_mask: Callable | None) -> Conditioning:
        on_mask = on_mask or on_float
        return Conditioning(
            tokens=on_float(self.tokens),
            pooled=None if self.pooled is None else on_float(self.pooled),
            mask=None if self.mask is None else on_mask(self.mask),
        )
