"""The hospital data set plants known studies; the hospital recipe fine-tunes a base on it."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict

import pytest

from memaudit.checkpoint import load_checkpoint
from memaudit.checkpoint.saving import save_diffusers_folder
from memaudit.data import ImageCaptionDataset
from memaudit.errors import MemauditError
from memaudit.tiny.hospital import HospitalRecipe, data_for_model, train_hospital, write_hospital_data
from memaudit.tiny.pipeline import build_tiny_pipeline

SMALL = HospitalRecipe(generic=20, planted=3, repeats=4, holdout=6, image_size=16, steps=2, batch_size=4)


def test_planted_studies_are_repeated_with_captions_no_other_study_has(tmp_path):
    truth = write_hospital_data(SMALL, tmp_path)
    train, holdout = ImageCaptionDataset(truth.train), ImageCaptionDataset(truth.holdout)
    assert len(train) == 20 + 3 * 4 and len(holdout) == 6
    assert len(truth.planted_ids) == 12 and set(truth.planted_ids) <= {record.id for record in train.records}
    counts = Counter(train.captions)
    assert [counts[text] for text in truth.planted_captions] == [4, 4, 4]
    planted_files = {record.file_name for record in train.records if record.id in truth.planted_ids}
    assert len(planted_files) == 3  # one image per planted study, listed four times
    assert all(text.startswith("Indication: ") for text in holdout.captions)
    assert not set(holdout.captions) & set(train.captions)
    recorded = json.loads((tmp_path / "ground_truth.json").read_text())
    assert recorded["planted_ids"] == list(truth.planted_ids) and recorded["recipe"]["repeats"] == 4


def test_hospital_data_is_reproducible(tmp_path):
    first = ImageCaptionDataset(write_hospital_data(SMALL, tmp_path / "a").train)
    second = ImageCaptionDataset(write_hospital_data(SMALL, tmp_path / "b").train)
    assert first.digest == second.digest


def test_hospital_recipe_fine_tunes_the_base(tmp_path):
    base = save_diffusers_folder(build_tiny_pipeline(seed=0), tmp_path / "base")
    model = train_hospital(SMALL, base, tmp_path / "out")
    assert load_checkpoint(model).pipeline.unet is not None
    record = json.loads((model / "recipe.json").read_text())
    assert record["recipe"]["planted"] == 3 and len(record["data_digest"]) == 64
    method = json.loads((model.parent / "method.json").read_text())
    assert method["method"] == "full" and method["steps"] == 2


def test_a_models_data_is_regenerated_from_its_recipe_and_digest_checked(tmp_path):
    digest = ImageCaptionDataset(write_hospital_data(SMALL, tmp_path / "reference").train).digest
    model = tmp_path / "model"
    model.mkdir()
    (model / "recipe.json").write_text(json.dumps({"recipe": asdict(SMALL), "data_digest": digest}))
    data = data_for_model(model, tmp_path / "again")
    assert ImageCaptionDataset(data.train).digest == digest and len(data.planted_captions) == 3

    (model / "recipe.json").write_text(json.dumps({"recipe": asdict(SMALL), "data_digest": "0" * 64}))
    with pytest.raises(MemauditError, match="is not what .* was trained on"):
        data_for_model(model, tmp_path / "mismatch")


def test_a_folder_without_a_hospital_recipe_is_named(tmp_path):
    with pytest.raises(MemauditError, match=r"recipe\.json: not a hospital model's recipe"):
        data_for_model(tmp_path, tmp_path / "out")
    (tmp_path / "recipe.json").write_text(json.dumps({"recipe": {"unknown_field": 1}}))
    with pytest.raises(MemauditError, match="not a hospital model's recipe"):
        data_for_model(tmp_path, tmp_path / "out")
