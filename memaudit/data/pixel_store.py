"""Images at one comparison side, kept as uint8 in a ``.npy`` file and read back a chunk at a time.

A scan compares generated images with every training image pixel by pixel (tiled L2). Stacked as
float32 in RAM that is 3 MiB per 512 px RGB image, ~30 GiB for 10^4 images. The store keeps them as
uint8 in one ``.npy`` file (768 KiB per image at 512 px) and reads a chunk at a time: memory is bounded
by the chunk, not by the data set.

The file is named by a digest of the images' file digests, the side and the channels, so a scan of
the same data reuses it; it is written under a temporary name and renamed when complete, so a killed
build leaves nothing a later scan would trust. A store in a cache folder is sealed (memaudit.sealing:
``<store>.seal`` records the images it holds and a keyed digest of its bytes) and checked when opened: a
store whose bytes changed is reported through ``on_stale`` and rebuilt from the images. Without a cache
folder the store lives in a temporary folder that goes with it.

Values are rounded to the nearest 1/255: exact for 8-bit images compared at their own side; after a
resize at most 0.5/255 per pixel, which moves a tiled L2 distance by at most 0.002.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from memaudit.data.dataset import ImageCaptionDataset, conform
from memaudit.sealing import StaleEntry, check_seal_beside, write_seal_beside


def store_key(digests: list[str], *, side: int, channels: int) -> str:
    """The name of the store holding these images (by file digest, in order) at this side and channels."""
    return hashlib.sha256(f"{side}:{channels}:{','.join(digests)}".encode()).hexdigest()


class PixelStore:
    """``[N, C, side, side]`` images in [0, 1]: ``len``, ``shape``, and integer or slice indexing that
    returns float32 tensors, so it stands in for a stacked tensor wherever images are read in chunks."""

    def __init__(self, path: Path, *, keep_alive: object = None) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as stream:
            major, _ = np.lib.format.read_magic(stream)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(stream)
            self._offset = stream.tell()
        if fortran or dtype != np.uint8 or len(shape) != 4:
            raise ValueError(f"{self.path}: not a pixel store (uint8 [N, C, H, W] in C order)")
        self._shape = tuple(int(n) for n in shape)
        self._item_bytes = int(np.prod(self._shape[1:], dtype=np.int64))
        self._keep_alive = keep_alive  # a temporary folder that must live as long as the store

    @classmethod
    def build(
        cls,
        dataset: ImageCaptionDataset,
        rows: list[int],
        *,
        side: int,
        channels: int = 3,
        root: Path | None = None,
        progress: Callable[[int], None] | None = None,
        on_stale: Callable[[str], None] | None = None,
    ) -> PixelStore:
        """The store of ``dataset``'s ``rows`` at ``side``, read from ``root`` when already built there and
        its seal holds (else ``on_stale`` is told why and it is rebuilt)."""
        if side < 1:
            raise ValueError(f"`side` must be at least 1, got {side}")
        keep_alive = None
        if root is None:
            keep_alive = tempfile.TemporaryDirectory(prefix="memaudit-pixels-")
            root = Path(keep_alive.name)
        digests = [dataset.image_digests[row] for row in rows]
        key = store_key(digests, side=side, channels=channels)
        path = Path(root) / f"{side}px-{channels}ch" / key[:2] / f"{key}.npy"
        provenance = {"kind": "comparison-pixels", "store": key, "images": len(rows)}
        if path.is_file() and keep_alive is None:
            try:
                check_seal_beside(path, provenance=provenance)
                store = cls(path)
                if store.shape == (len(rows), channels, side, side):
                    if progress:
                        progress(len(rows))
                    return store
                raise StaleEntry(f"{path}: holds {store.shape}, not {(len(rows), channels, side, side)}")
            except (StaleEntry, ValueError, OSError) as error:
                if on_stale:
                    on_stale(f"comparison pixels: {error}")
        _write(dataset, rows, path, shape=(len(rows), channels, side, side), progress=progress)
        if keep_alive is None:
            write_seal_beside(path, provenance=provenance)
        return cls(path, keep_alive=keep_alive)

    def __len__(self) -> int:
        return self._shape[0]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return self._shape  # type: ignore[return-value]

    def __getitem__(self, index: int | slice) -> torch.Tensor:
        """Read with plain file reads, not a memory map: the pages read stay in the OS cache, not in this
        process's resident memory, so reading every chunk of 10^5 images leaves the process one chunk big."""
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise IndexError("a PixelStore slice must be contiguous")
            return self._read(start, max(0, stop - start))
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(f"image {index} of a store of {len(self)}")
        return self._read(position, 1)[0]

    def _read(self, start: int, count: int) -> torch.Tensor:
        with open(self.path, "rb") as stream:
            stream.seek(self._offset + start * self._item_bytes)
            data = stream.read(count * self._item_bytes)
        array = np.frombuffer(data, dtype=np.uint8).reshape(count, *self._shape[1:])
        return torch.from_numpy(array.astype(np.float32) / 255.0)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """A [0, 1] image as uint8, rounded to the nearest level."""
    return (image.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()


def _write(dataset, rows, path: Path, *, shape: tuple[int, ...], progress) -> None:
    """Header, then each image's bytes in turn, with plain writes: a memory-mapped write would keep every
    written page resident in the process until the map is closed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npy")
    try:
        with os.fdopen(handle, "wb") as stream:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False}
            np.lib.format.write_array_header_1_0(stream, header | {"shape": shape})
            for row in rows:
                image = to_uint8(conform(dataset.load_image(row), size=shape[-1], channels=shape[1]))
                stream.write(np.ascontiguousarray(image).tobytes())
                if progress:
                    progress(1)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
