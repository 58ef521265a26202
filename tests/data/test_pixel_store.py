"""PixelStore: images at the comparison side as uint8 on disk, read back as float chunks."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from memaudit.data import ImageCaptionDataset, conform
from memaudit.data.pixel_store import PixelStore
from memaudit.metrics.extraction import nearest_tiled_l2, two_nearest_tiled_l2
from tests.images import write_png


def _dataset(folder: Path, count: int, *, seed: int = 0, side: int = 12) -> ImageCaptionDataset:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        write_png(folder / f"{index}.png", rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
        rows.append({"id": f"item-{index}", "file_name": f"{index}.png", "text": f"caption {index}"})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return ImageCaptionDataset(folder)


def test_images_at_their_own_side_come_back_exactly(tmp_path):
    dataset = _dataset(tmp_path / "data", 5)
    store = PixelStore.build(dataset, [3, 0, 4], side=12, root=tmp_path / "cache")
    assert len(store) == 3 and store.shape == (3, 3, 12, 12)
    expected = torch.stack([dataset.load_image(row) for row in (3, 0, 4)])
    assert torch.equal(store[0:3], expected)  # 8-bit PNGs at their own side: no rounding at all
    assert torch.equal(store[1], expected[1])


def test_resized_images_are_within_half_a_level(tmp_path):
    dataset = _dataset(tmp_path / "data", 4)
    store = PixelStore.build(dataset, list(range(4)), side=7, root=tmp_path / "cache")
    exact = torch.stack([conform(dataset.load_image(row), size=7, channels=3) for row in range(4)])
    error = (store[0:4] - exact).abs().max()
    assert 0 < float(error) <= 0.5 / 255 + 1e-7


def test_a_built_store_is_reused_and_named_by_content_side_and_channels(tmp_path, monkeypatch):
    dataset = _dataset(tmp_path / "data", 3)
    first = PixelStore.build(dataset, [0, 1], side=12, root=tmp_path / "cache")
    loads = []
    original = dataset.load_image
    monkeypatch.setattr(dataset, "load_image", lambda row: loads.append(row) or original(row))
    again = PixelStore.build(dataset, [0, 1], side=12, root=tmp_path / "cache")
    assert again.path == first.path and loads == [] and torch.equal(again[0:2], first[0:2])
    assert PixelStore.build(dataset, [1, 0], side=12, root=tmp_path / "cache").path != first.path
    assert PixelStore.build(dataset, [0, 1], side=6, root=tmp_path / "cache").path != first.path
    assert PixelStore.build(dataset, [0, 1], side=12, channels=1, root=tmp_path / "cache").path != first.path


@pytest.mark.parametrize("damage", ["zero rows", "truncate", "drop the seal", "swap in another store"])
def test_a_changed_store_is_named_and_rebuilt_from_the_images(tmp_path, damage):
    """Zeroing rows of a cached store once turned a FAIL into a PASS: the store is trusted for speed only."""
    dataset = _dataset(tmp_path / "data", 4)
    built = PixelStore.build(dataset, [0, 1, 2, 3], side=12, root=tmp_path / "cache")
    expected = built[0:4]
    if damage == "zero rows":
        array = np.load(built.path, mmap_mode="r+")
        array[:3] = 0
        array.flush()
        del array
    elif damage == "truncate":
        built.path.write_bytes(built.path.read_bytes()[:-100])
    elif damage == "drop the seal":
        built.path.with_name(built.path.name + ".seal").unlink()
    else:
        other = PixelStore.build(_dataset(tmp_path / "other", 4, seed=1), [0, 1, 2, 3], side=12, root=tmp_path / "x")
        built.path.write_bytes(other.path.read_bytes())
    said = []
    again = PixelStore.build(dataset, [0, 1, 2, 3], side=12, root=tmp_path / "cache", on_stale=said.append)
    assert torch.equal(again[0:4], expected)
    assert len(said) == 1 and str(built.path) in said[0], said
    again = PixelStore.build(dataset, [0, 1, 2, 3], side=12, root=tmp_path / "cache", on_stale=said.append)
    assert len(said) == 1  # rebuilt and resealed: trusted again


def test_a_failed_build_leaves_nothing_behind(tmp_path, monkeypatch):
    dataset = _dataset(tmp_path / "data", 3)
    original = dataset.load_image

    def fail_on_last(row):
        if row == 2:
            raise OSError("disk went away")
        return original(row)

    monkeypatch.setattr(dataset, "load_image", fail_on_last)
    with pytest.raises(OSError, match="disk went away"):
        PixelStore.build(dataset, [0, 1, 2], side=12, root=tmp_path / "cache")
    assert [path for path in (tmp_path / "cache").rglob("*") if path.is_file()] == []


def test_without_a_cache_folder_the_store_is_removed_with_it(tmp_path):
    dataset = _dataset(tmp_path / "data", 2)
    store = PixelStore.build(dataset, [0, 1], side=12)
    path = store.path
    assert path.is_file()
    del store
    gc.collect()
    assert not path.exists()


def test_an_empty_store_has_no_images(tmp_path):
    store = PixelStore.build(_dataset(tmp_path / "data", 1), [], side=12, root=tmp_path / "cache")
    assert len(store) == 0 and store.shape == (0, 3, 12, 12)


def test_nearest_search_over_a_store_equals_the_search_over_stacked_images(tmp_path):
    dataset = _dataset(tmp_path / "data", 30, seed=1)
    store = PixelStore.build(dataset, list(range(30)), side=12, root=tmp_path / "cache")
    stacked = store[0:30]
    queries = torch.rand(5, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    for chunk in (4, None):
        assert all(
            torch.equal(a, b)
            for a, b in zip(
                two_nearest_tiled_l2(queries, store, chunk_size=chunk),
                two_nearest_tiled_l2(queries, stacked, chunk_size=chunk),
                strict=True,
            )
        )
    distance, index = nearest_tiled_l2(store, store, chunk_size=7)  # a store as the queries too
    assert torch.equal(index, torch.arange(30)) and float(distance.max()) < 1e-6  # 0 up to float64 cancellation


def test_indexing_is_checked_and_negative_indices_count_from_the_end(tmp_path):
    store = PixelStore.build(_dataset(tmp_path / "data", 3), [0, 1, 2], side=12, root=tmp_path / "cache")
    assert torch.equal(store[-1], store[2]) and store[1:99].shape == (2, 3, 12, 12) and store[5:9].shape[0] == 0
    with pytest.raises(IndexError, match="image 3 of a store of 3"):
        store[3]
    with pytest.raises(IndexError, match="contiguous"):
        store[0:3:2]


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    path = tmp_path / "floats.npy"
    np.save(path, np.zeros((2, 3, 4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="not a pixel store"):
        PixelStore(path)
