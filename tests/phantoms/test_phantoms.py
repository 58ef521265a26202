"""Phantom chest X-rays: deterministic, anatomically arranged, findings visible where the caption says."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from memaudit.cli import run
from memaudit.data import ImageCaptionDataset
from memaudit.phantoms.anatomy import draw
from memaudit.phantoms.cohort import (
    NORMAL_CAPTION,
    caption,
    patient_rng,
    phantom,
    report_words,
    sample_patient,
    write_cohort,
)


def test_same_seed_same_pixels_other_seed_other_pixels():
    first, text = phantom(7, 3, 48)
    again, text_again = phantom(7, 3, 48)
    assert np.array_equal(first, again) and text == text_again
    assert not np.array_equal(first, phantom(8, 3, 48)[0])
    assert first.min() >= 0 and first.max() <= 1


def _normal(seed: int = 0):
    rng = patient_rng(seed, 0)
    return dataclasses.replace(sample_patient(rng), findings={}, noise=0.0)


def _mean(image, rows, cols):
    return float(image[rows[0] : rows[1], cols[0] : cols[1]].mean())


def test_anatomy_lungs_are_dark_and_the_mediastinum_bright():
    image = draw(_normal(), 64, np.random.default_rng(0))
    right_lung, left_lung = _mean(image, (20, 34), (12, 22)), _mean(image, (20, 34), (42, 52))
    mediastinum, outside = _mean(image, (10, 30), (30, 34)), _mean(image, (0, 3), (0, 3))
    assert mediastinum > right_lung + 0.15 and mediastinum > left_lung + 0.15
    assert right_lung > outside


@pytest.mark.parametrize(
    ("finding", "details", "region"),
    [
        ("effusion", {"side": -1, "level": 0.1}, ((38, 44), (10, 20))),  # right base, image left
        ("nodule", {"side": 1, "x": 0.4, "y": -0.2, "r": 0.05}, ((24, 27), (43, 46))),
        ("cardiomegaly", {}, ((38, 50), (44, 50))),
    ],
)
def test_a_finding_brightens_its_region(finding, details, region):
    normal = _normal()
    sick = dataclasses.replace(normal, findings={finding: details})
    before = draw(normal, 64, np.random.default_rng(0))
    after = draw(sick, 64, np.random.default_rng(0))
    assert _mean(after, *region) > _mean(before, *region) + 0.02
    assert caption(sick) != NORMAL_CAPTION


def test_captions_follow_the_templates():
    normal = _normal()
    assert caption(normal) == NORMAL_CAPTION
    sick = dataclasses.replace(normal, findings={"effusion": {"side": 1, "level": 0.3}, "device": {"pacemaker": True}})
    assert caption(sick) == "Small left pleural effusion. Endotracheal tube in place. Left chest wall pacemaker."


def test_cohort_folder_is_a_dataset_with_a_shared_normal_caption(tmp_path, capsys):
    assert run(["phantoms", "--out", str(tmp_path / "cohort"), "--count", "40", "--size", "32", "--seed", "1"]) == 0
    dataset = ImageCaptionDataset(tmp_path / "cohort")
    assert len(dataset) == 40 and dataset.load_image(0).shape == (1, 32, 32)
    assert 8 <= dataset.captions.count(NORMAL_CAPTION) <= 30  # many studies share the normal caption
    assert (tmp_path / "cohort" / "SYNTHETIC.txt").read_text().startswith("SYNTHETIC PHANTOM DATA")
    rows = [json.loads(line) for line in (tmp_path / "cohort" / "metadata.jsonl").read_text().splitlines()]
    assert rows[0]["id"] == "phantom-000000" and rows[0]["patient_id"] == "phantom-p000000"
    assert "distinct captions" in capsys.readouterr().out


def test_an_indication_changes_the_caption_never_the_image():
    plain, plain_text = phantom(3, 5, 32)
    with_indication, text = phantom(3, 5, 32, indication_share=1.0)
    assert np.array_equal(plain, with_indication)
    assert text.startswith("Indication: ") and text.endswith(plain_text)
    opening = text[: len(text) - len(plain_text)].strip()
    assert re.fullmatch(
        r"Indication: \d+-year-old (man|woman) with [a-z ]+ and [a-z ]+\. History of [a-z ]+\.", opening
    )


def test_report_words_cover_every_caption():
    words = set(report_words())
    for index in range(200):
        text = phantom(4, index, 16, indication_share=0.5)[1]
        assert set(re.findall(r"[a-z]+", text.lower())) <= words


def test_repeated_studies_share_one_image_file(tmp_path):
    folder = write_cohort(tmp_path / "dup", count=2, seed=0, size=16, repeats=3)
    dataset = ImageCaptionDataset(folder)
    assert [record.id for record in dataset.records][:3] == [
        "phantom-000000-copy0",
        "phantom-000000-copy1",
        "phantom-000000-copy2",
    ]
    assert len({record.file_name for record in dataset.records}) == 2 and len(dataset) == 6
    with pytest.raises(ValueError, match="repeats"):
        write_cohort(tmp_path / "bad", count=1, seed=0, repeats=0)
