"""Decode PNG, JPEG and DICOM files (grayscale or RGB, 8 or 16 bit) to float tensors in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from memaudit.errors import DataError

DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})


def is_dicom(path: Path, head: bytes) -> bool:
    return path.suffix.lower() in DICOM_SUFFIXES or head[128:132] == b"DICM"


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    """[H, W] or [H, W, C] float array in [0, 1] to a [C, H, W] float32 tensor."""
    array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _from_8bit(array: np.ndarray) -> torch.Tensor:
    """uint8 [H, W] or [H, W, C] to a [C, H, W] float32 tensor in [0, 1] with one allocation: float64
    intermediates doubled the decode time, each a fresh multi-MiB block the kernel must fault in. The
    float32 quotient x / 255 equals the float64 one rounded to float32 (x / 255's binary digits repeat
    with period 8, so the float64 value never sits on a float32 tie); a test checks all 256 values."""
    array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    return torch.from_numpy(np.require(array, requirements=["C", "W"])).to(torch.float32).div_(255.0)


def _decode_pil(path: Path) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(image, dtype=np.float64)
                if array.min() < 0 or array.max() > 65535:
                    raise DataError(f"{path}: integer image outside the 16-bit range")
                return _to_tensor(array / 65535.0)
            if mode == "F":
                raise DataError(f"{path}: floating-point images are not supported; store 8 or 16-bit integers")
            return _from_8bit(np.asarray(image.convert("L" if mode in ("1", "L", "LA") else "RGB")))
    except Image.DecompressionBombError as error:
        raise DataError(f"{path}: refused, larger than Pillow's decompression-bomb limit ({error})") from error
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"{path}: cannot decode image ({error})") from error


def _decode_dicom(path: Path) -> torch.Tensor:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array
    except (InvalidDicomError, OSError, ValueError, AttributeError, RuntimeError) as error:
        raise DataError(f"{path}: cannot decode DICOM ({error})") from error
    if int(getattr(dataset, "NumberOfFrames", 1) or 1) > 1:
        raise DataError(f"{path}: multi-frame DICOM is not supported (one image per row)")
    bits = int(dataset.BitsStored)
    array = pixels.astype(np.float64)
    if int(getattr(dataset, "PixelRepresentation", 0)) == 1:  # signed storage
        array = array + 2 ** (bits - 1)
    array = np.clip(array / (2**bits - 1), 0.0, 1.0)
    if str(getattr(dataset, "PhotometricInterpretation", "")) == "MONOCHROME1":
        array = 1.0 - array  # MONOCHROME1 stores bright as low values
    return _to_tensor(array)


def decode_image(path: Path | str) -> torch.Tensor:
    """Read one image file as a ``[C, H, W]`` float32 tensor in [0, 1], C = 1 (grayscale) or 3 (RGB)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError as error:
        raise DataError(f"{path}: cannot read image ({error.strerror or error})") from error
    return _decode_dicom(path) if is_dicom(path, head) else _decode_pil(path)
