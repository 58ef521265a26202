"""Shared fixtures: one tiny random-weight SD pipeline per session, saved in both checkpoint formats."""

from __future__ import annotations

from pathlib import Path

import pytest

import memaudit  # noqa: F401  (applies the offline and torchvision guards first)
from memaudit.checkpoint.saving import save_diffusers_folder, save_single_file_twin
from memaudit.tiny.pipeline import build_tiny_pipeline
from tests.signed_scan import signed_scan  # noqa: F401  (a session fixture for render/ and attest/)


@pytest.fixture(scope="session")
def tiny_pipeline():
    return build_tiny_pipeline(seed=0)


@pytest.fixture(scope="session")
def tiny_folder(tiny_pipeline, tmp_path_factory) -> Path:
    return save_diffusers_folder(tiny_pipeline, tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_single_file(tiny_pipeline, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny-single")
    return save_single_file_twin(tiny_pipeline, root / "model.safetensors", root / "config")
