"""Dataset loading, resizing, digests and the data check's findings."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from memaudit.data import ImageCaptionDataset, check_datasets, conform
from memaudit.errors import DataError
from tests.images import write_png


def _dataset(folder, rows, arrays):
    for name, array in arrays.items():
        write_png(folder / name, array)
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return ImageCaptionDataset(folder)


@pytest.fixture
def train(tmp_path):
    arrays = {f"{i}.png": np.full((4, 4), 60 * i, dtype=np.uint8) for i in range(3)}
    arrays["dup.png"] = arrays["1.png"]
    rows = [{"file_name": name, "text": f"t{name}", "patient_id": f"p{k}"} for k, name in enumerate(arrays)]
    return _dataset(tmp_path / "train", rows, arrays)


def test_dataset_digest_is_order_independent_and_content_bound(train, tmp_path):
    manifest = train.manifest.read_text().splitlines()
    (train.root / "reversed.jsonl").write_text("\n".join(reversed(manifest)) + "\n")
    assert ImageCaptionDataset(train.root / "reversed.jsonl").digest == train.digest
    (train.root / "recaptioned.jsonl").write_text("\n".join(manifest).replace('"t0.png"', '"other"') + "\n")
    assert ImageCaptionDataset(train.root / "recaptioned.jsonl").digest != train.digest


def test_item_digest_definition(train):
    record = train.records[0]
    image_digest = hashlib.sha256(train.image_path(record).read_bytes()).hexdigest()
    assert train.item_digests[0] == hashlib.sha256(f"{image_digest}\0{record.text}".encode()).hexdigest()


def test_first_rows_by_image_content_and_by_item(train, tmp_path):
    assert train.first_rows("image") == [0, 1, 2]  # dup.png has 1.png's bytes: one image
    assert train.first_rows("item") == [0, 1, 2, 3]  # but its own caption: its own item
    again = [{"id": f"again-{k}", "file_name": f"{k}.png", "text": f"t{k}.png"} for k in range(2)]
    manifest = train.manifest.read_text().splitlines() + [json.dumps(row) for row in again]
    (train.root / "twice.jsonl").write_text("\n".join(manifest) + "\n")
    twice = ImageCaptionDataset(train.root / "twice.jsonl")
    assert twice.first_rows("item") == [0, 1, 2, 3] and twice.first_rows("image") == [0, 1, 2]


def test_load_images_batches_and_resizes(train):
    batch = train.load_images(size=8, channels=3)
    assert batch.shape == (4, 3, 8, 8)
    assert torch.allclose(batch[2], torch.full((3, 8, 8), 120 / 255), atol=1e-6)


def test_images_of_different_sizes_need_a_size(tmp_path):
    arrays = {"a.png": np.zeros((4, 4), np.uint8), "b.png": np.zeros((6, 6), np.uint8)}
    dataset = _dataset(tmp_path, [{"file_name": n, "text": ""} for n in arrays], arrays)
    with pytest.raises(DataError, match="differ in shape"):
        dataset.load_images()
    assert dataset.load_images(size=4).shape == (2, 1, 4, 4)


def test_rgb_to_gray_uses_luma_weights():
    image = torch.zeros(3, 1, 1)
    image[1] = 1.0
    assert conform(image, channels=1).item() == pytest.approx(0.587)


def test_data_check_finds_duplicates_and_train_holdout_overlap(train, tmp_path):
    arrays = {"h0.png": np.full((4, 4), 120, dtype=np.uint8), "h1.png": np.full((4, 4), 7, dtype=np.uint8)}
    rows = [
        {"file_name": "h0.png", "text": "a", "patient_id": "p0"},
        {"file_name": "h1.png", "text": "b", "patient_id": "p9"},
    ]
    holdout = _dataset(tmp_path / "holdout", rows, arrays)
    report = check_datasets(train, holdout)
    assert report.train.duplicate_images == [["1.png", "dup.png"]]
    assert report.shared_patients == ["p0"]
    assert report.shared_images == [["2.png", "h0.png"]]
    assert len(report.findings) == 3
    assert report.train.items == 4 and report.train.patients == 4 and report.train.image_shapes == {"1x4x4": 4}


def test_clean_data_has_no_findings(tmp_path):
    arrays = {f"{i}.png": np.full((2, 2), i, dtype=np.uint8) for i in range(3)}
    dataset = _dataset(tmp_path, [{"file_name": n, "text": n} for n in arrays], arrays)
    assert check_datasets(dataset).findings == []


def test_grayscale_resized_then_copied_equals_resizing_the_rgb_copy():
    gray = torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(0))
    rgb = torch.nn.functional.interpolate(
        gray.expand(3, -1, -1)[None], size=(16, 16), mode="bilinear", antialias=True, align_corners=False
    )[0].clamp(0.0, 1.0)
    assert torch.equal(conform(gray, size=16, channels=3), rgb)
    assert conform(gray, size=16, channels=3).is_contiguous()
