"""Decoding every supported image format to [0, 1] tensors with known values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memaudit.data import decode_image
from memaudit.errors import DataError
from tests.images import write_dicom, write_png


def test_8bit_grayscale_png(tmp_path):
    array = np.array([[0, 51], [204, 255]], dtype=np.uint8)
    image = decode_image(write_png(tmp_path / "a.png", array))
    assert image.shape == (1, 2, 2) and image.dtype == torch.float32
    assert torch.allclose(image[0], torch.tensor([[0.0, 0.2], [0.8, 1.0]]))


def test_every_8bit_value_is_the_float64_quotient_rounded_to_float32(tmp_path):
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    expected = torch.from_numpy((values.astype(np.float64) / 255.0).astype(np.float32))
    assert torch.equal(decode_image(write_png(tmp_path / "gray.png", values))[0], expected)
    rgb = np.stack([values, values.T, 255 - values], axis=-1)
    decoded = decode_image(write_png(tmp_path / "rgb.png", rgb))
    assert torch.equal(decoded, torch.from_numpy(np.moveaxis(rgb.astype(np.float64) / 255.0, -1, 0).astype(np.float32)))


def test_16bit_grayscale_png_keeps_its_precision(tmp_path):
    array = np.array([[0, 1], [32768, 65535]], dtype=np.uint16)
    image = decode_image(write_png(tmp_path / "a.png", array))
    expected = torch.tensor([[0.0, 1 / 65535], [32768 / 65535, 1.0]])
    assert torch.allclose(image[0], expected, atol=1e-7)


def test_rgb_png_is_three_channels(tmp_path):
    array = np.zeros((2, 3, 3), dtype=np.uint8)
    array[..., 0] = 255
    image = decode_image(write_png(tmp_path / "a.png", array))
    assert image.shape == (3, 2, 3)
    assert image[0].eq(1).all() and image[1:].eq(0).all()


def test_jpeg_decodes_close_to_its_source(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((8, 8), 128, dtype=np.uint8)).save(tmp_path / "a.jpg", quality=95)
    image = decode_image(tmp_path / "a.jpg")
    assert image.shape == (1, 8, 8)
    assert torch.allclose(image, torch.full_like(image, 128 / 255), atol=2 / 255)


def test_dicom_is_scaled_by_its_stored_bits(tmp_path):
    array = np.array([[0, 1024], [2048, 4095]], dtype=np.uint16)
    image = decode_image(write_dicom(tmp_path / "a.dcm", array, bits=12))
    assert torch.allclose(image[0], torch.tensor([[0.0, 1024 / 4095], [2048 / 4095, 1.0]]), atol=1e-7)


def test_monochrome1_dicom_is_inverted(tmp_path):
    array = np.array([[0, 4095]], dtype=np.uint16)
    image = decode_image(write_dicom(tmp_path / "b.dcm", array, bits=12, monochrome1=True))
    assert image[0].tolist() == [[1.0, 0.0]]


def test_dicom_without_suffix_is_recognised_by_its_magic(tmp_path):
    path = write_dicom(tmp_path / "c.dcm", np.array([[4095]], dtype=np.uint16), bits=12)
    renamed = path.rename(tmp_path / "c.img")
    assert decode_image(renamed).item() == 1.0


def test_unreadable_image_names_the_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match="broken.png: cannot decode image"):
        decode_image(path)


def test_missing_image_names_the_file(tmp_path):
    with pytest.raises(DataError, match="nothere.png: cannot read image"):
        decode_image(tmp_path / "nothere.png")
