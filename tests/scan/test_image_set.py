"""Images read a batch at a time: from memory, or from a release's files at the scan's side."""

from __future__ import annotations

import json

import numpy as np
import torch

from memaudit.data import ImageCaptionDataset, conform
from memaudit.scan.image_set import ImageSet
from tests.images import write_png


def test_in_memory_batches_are_the_images_in_order():
    images = torch.rand(5, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    batches = list(ImageSet.in_memory(images).batches(2))
    assert [len(batch) for batch in batches] == [2, 2, 1] and torch.equal(torch.cat(batches), images)
    assert len(ImageSet.in_memory(images)) == 5


def test_dataset_batches_decode_each_file_when_its_batch_is_read(tmp_path, monkeypatch):
    rows = []
    for index in range(5):
        write_png(tmp_path / f"{index}.png", np.full((8, 8), 40 * index, dtype=np.uint8))
        rows.append({"file_name": f"{index}.png", "text": f"report {index}"})
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    dataset = ImageCaptionDataset(tmp_path)
    decoded = []
    original = ImageCaptionDataset.load_image
    monkeypatch.setattr(ImageCaptionDataset, "load_image", lambda self, row: decoded.append(row) or original(self, row))
    images = ImageSet.from_dataset(dataset, side=4)
    batches = images.batches(2)
    assert decoded == [] and len(images) == 5  # nothing read until a batch is asked for
    first = next(batches)
    assert decoded == [0, 1] and first.shape == (2, 3, 4, 4)
    rest = list(batches)
    expected = torch.stack([conform(original(dataset, row), size=4, channels=3) for row in range(5)])
    assert torch.equal(torch.cat([first, *rest]), expected)
