"""An image-caption dataset: validated manifest rows, lazy image decoding and content digests."""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from memaudit.checkpoint.files import sha256_file
from memaudit.data.columns import DataConfig
from memaudit.data.images import decode_image
from memaudit.data.manifest import Record, read_image_folder, read_manifest
from memaudit.errors import DataError


class ImageCaptionDataset:
    """Rows of a manifest whose image files all exist; images are decoded on demand."""

    def __init__(self, path: Path | str, *, images_only: bool = False, config: DataConfig | None = None) -> None:
        """``images_only``: also accept a plain folder of images without a manifest (captions empty).
        ``config``: how the manifest's columns map to memaudit's fields (the same fields either way)."""
        self.source = Path(path)
        if images_only:
            if config:
                raise DataError(f"{self.source}: a folder of images takes no column mapping")
            self.manifest, self.root, self.records = read_image_folder(self.source)
        else:
            self.manifest, self.root, self.records = read_manifest(self.source, config)
        for record in self.records:
            image = self.image_path(record)
            if not image.is_file():
                raise DataError(
                    f"{self.manifest}, row {record.row}: image {record.file_name!r} not found (looked for {image})"
                )

    def __len__(self) -> int:
        return len(self.records)

    def image_path(self, record: Record) -> Path:
        return self.root / record.file_name

    @property
    def ids(self) -> list[str]:
        return [record.id for record in self.records]

    @property
    def captions(self) -> list[str]:
        return [record.text for record in self.records]

    def load_image(self, index: int) -> torch.Tensor:
        """``[C, H, W]`` float32 in [0, 1]."""
        return decode_image(self.image_path(self.records[index]))

    def load_images(
        self, indices: list[int] | None = None, *, size: int | None = None, channels: int | None = None
    ) -> torch.Tensor:
        """A batch ``[N, C, H, W]``: optionally resized to ``size`` x ``size`` and to 1 or 3 channels.

        Without ``size`` every image must already have the same shape.
        """
        indices = list(range(len(self))) if indices is None else indices
        images = [conform(self.load_image(i), size=size, channels=channels) for i in indices]
        shapes = {tuple(image.shape) for image in images}
        if len(shapes) > 1:
            raise DataError(f"{self.source}: images differ in shape {sorted(shapes)}; give a size to resize to")
        return torch.stack(images) if images else torch.empty(0)

    @cached_property
    def item_digests(self) -> list[str]:
        """Per row: sha256 over the image file's sha256, a NUL byte and the UTF-8 caption."""
        return [
            hashlib.sha256(f"{image_digest}\0{record.text}".encode()).hexdigest()
            for image_digest, record in zip(self.image_digests, self.records, strict=True)
        ]

    @cached_property
    def image_digests(self) -> list[str]:
        return [sha256_file(self.image_path(record)) for record in self.records]

    def first_rows(self, by: Literal["image", "item"]) -> list[int]:
        """The first row of each distinct image file content (``image``) or (image, caption) item
        (``item``), in row order: a study listed many times counts once."""
        digests = self.image_digests if by == "image" else self.item_digests
        first: dict[str, int] = {}
        for row, digest in enumerate(digests):
            first.setdefault(digest, row)
        return list(first.values())

    @property
    def digest(self) -> str:
        """Order-independent dataset digest: sha256 over the sorted item digests, one per line."""
        return hashlib.sha256("\n".join(sorted(self.item_digests)).encode()).hexdigest()


def conform(image: torch.Tensor, *, size: int | None = None, channels: int | None = None) -> torch.Tensor:
    """Resize a ``[C, H, W]`` image (area/bilinear, antialiased) and convert grayscale <-> RGB. Grayscale
    is resized before it is copied to three channels (the same values, a third of the work)."""
    to_rgb = channels == 3 and image.shape[0] == 1
    if channels is not None and image.shape[0] != channels and not to_rgb:
        if channels == 1 and image.shape[0] == 3:
            # ITU-R BT.601 luma, the usual grayscale conversion.
            weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype)[:, None, None]
            image = (image * weights).sum(0, keepdim=True)
        else:
            raise ValueError(f"cannot convert {image.shape[0]} channels to {channels}")
    if size is not None and tuple(image.shape[-2:]) != (size, size):
        image = F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
        image = image.clamp(0.0, 1.0)
    if to_rgb:
        image = image.expand(3, -1, -1)
    return image.contiguous()
