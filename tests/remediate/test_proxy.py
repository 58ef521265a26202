"""D_mem counts a caption as unique when one image carries it, however often that pair is listed."""

from __future__ import annotations

import json
from types import SimpleNamespace

from memaudit.data import ImageCaptionDataset
from memaudit.policy.model import Remediation
from memaudit.remediate.proxy import memorization_set


def _dataset(tmp_path, rows):
    (tmp_path / "images").mkdir()
    from PIL import Image

    for name in {file for file, _ in rows}:
        Image.new("L", (8, 8)).save(tmp_path / "images" / name)
    lines = [{"id": f"row{i}", "file_name": f"images/{file}", "text": text} for i, (file, text) in enumerate(rows)]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return ImageCaptionDataset(tmp_path)


def test_duplicated_unique_pairs_enter_once_and_shared_captions_never(tmp_path):
    rows = [
        ("a.png", "shared caption"),
        ("b.png", "shared caption"),
        ("c.png", "unique c"),
        ("c.png", "unique c"),
        ("c.png", "unique c"),
        ("d.png", "unique d"),
    ]
    dataset = _dataset(tmp_path, rows)
    chosen = memorization_set(
        SimpleNamespace(checks={}), dataset, settings=Remediation(memorization_set_size=10), seed=0
    )
    assert sorted(dataset.records[row].file_name for row in chosen) == ["images/c.png", "images/d.png"]
    limited = memorization_set(
        SimpleNamespace(checks={}), dataset, settings=Remediation(memorization_set_size=1), seed=0
    )
    assert len(limited) == 1
