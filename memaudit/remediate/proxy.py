"""The inner loop's proxy data: the memorization set D_mem, repeated, plus a fraction of the training set.

D_mem holds the training pairs the scan flagged or extracted; when those are fewer than the policy's
memorization set size, it is filled with training pairs whose captions are unique (the ones a model
can memorize caption-for-image), in a seeded order. A caption is unique when one image file carries it,
however often that pair is listed (duplicated exports are what make a model memorize); D_mem holds
each image once.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import torch

from memaudit.atomic_files import write_atomic
from memaudit.data import ImageCaptionDataset
from memaudit.policy.model import Remediation
from memaudit.results.scan_result import ScanResult
from memaudit.sampling.seeds import sample_seed


def memorization_set(
    result: ScanResult, train: ImageCaptionDataset, *, settings: Remediation, seed: int
) -> list[int]:
    """Row indices of D_mem: extracted first, then flagged, then unique-caption rows (seeded order)."""
    row_of = {record.id: row for row, record in enumerate(train.records)}
    chosen: list[int] = []
    files: set[str] = set()

    def add(row: int | None) -> None:
        if row is not None and train.records[row].file_name not in files:
            files.add(train.records[row].file_name)
            chosen.append(row)

    extraction = result.checks.get("extraction")
    if extraction is not None and extraction.extraction is not None:
        for attacked in extraction.extraction.attacked:
            if attacked.extracted:
                for item in attacked.item_ids:
                    add(row_of.get(item))
    noise = result.checks.get("noise_magnitude")
    if noise is not None and noise.noise_magnitude is not None:
        for item in noise.noise_magnitude.flagged_item_ids:
            add(row_of.get(item))
    first_row = {}
    for row, record in enumerate(train.records):
        first_row.setdefault((record.text, record.file_name), row)
    images_per_caption = Counter(text for text, _ in first_row)
    unique = [row for (text, _), row in first_row.items() if images_per_caption[text] == 1]
    generator = torch.Generator().manual_seed(sample_seed(seed, "memorization-set", 0))
    for position in torch.randperm(len(unique), generator=generator).tolist():
        if len(chosen) >= settings.memorization_set_size:
            break
        add(unique[position])
    return chosen[: settings.memorization_set_size]


def write_proxy_manifest(
    train: ImageCaptionDataset, memorization_rows: list[int], *, settings: Remediation, seed: int, path: Path
) -> Path:
    """A JSONL manifest (absolute image paths) of D_mem x repeats plus a seeded training fraction."""
    generator = torch.Generator().manual_seed(sample_seed(seed, "proxy-fraction", 0))
    count = max(1, round(settings.proxy_fraction * len(train)))
    fraction_rows = sorted(torch.randperm(len(train), generator=generator)[:count].tolist())
    lines = []
    for repeat in range(settings.memorization_repeats):
        for row in memorization_rows:
            lines.append((row, f"{train.records[row].id}#mem{repeat}"))
    lines += [(row, f"{train.records[row].id}#proxy") for row in fraction_rows]
    text = "".join(
        json.dumps(
            {
                "id": item_id,
                "file_name": str(train.image_path(train.records[row]).resolve()),
                "text": train.records[row].text,
            }
        )
        + "\n"
        for row, item_id in lines
    )
    return write_atomic(path, text)
