"""Writers for small test images in every format memaudit reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_png(path: Path, array: np.ndarray) -> Path:
    """uint8 [H, W] or [H, W, 3], or uint16 [H, W] (a 16-bit grayscale PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == np.uint16:
        Image.fromarray(array).save(path)
    else:
        Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def write_dicom(path: Path, array: np.ndarray, *, bits: int = 12, monochrome1: bool = False) -> Path:
    """An uncompressed single-frame grayscale DICOM with ``bits`` stored bits."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "DX"
    dataset.Rows, dataset.Columns = array.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    dataset.BitsAllocated = 16
    dataset.BitsStored = bits
    dataset.HighBit = bits - 1
    dataset.PixelRepresentation = 0
    dataset.PixelData = array.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    return path


def write_dataset(folder: Path, images: list[np.ndarray], captions: list[str], *, prefix: str) -> Path:
    """A dataset folder: one PNG per image and a metadata.jsonl with ids ``<prefix>-<k>``."""
    rows = []
    for index, (image, caption) in enumerate(zip(images, captions, strict=True)):
        write_png(folder / f"{index}.png", image)
        rows.append({"id": f"{prefix}-{index}", "file_name": f"{index}.png", "text": caption})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder
