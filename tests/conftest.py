"""Shared fixtures: one tiny random-weight SD pipeline per session, saved in both checkpoint formats."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import memaudit  # noqa: F401  (applies the offline and torchvision guards first)
from memaudit.checkpoint.saving import save_diffusers_folder, save_single_file_twin
from memaudit.tiny.pipeline import build_tiny_pipeline
from tests.signed_scan import signed_scan  # noqa: F401  (a session fixture for render/ and attest/)


def pytest_configure(config):
    """Under pytest-xdist (`make test` runs one worker per core), each worker and the processes it starts
    get their share of the cores: every worker running torch on every core would oversubscribe them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """Slow tests first (collection order otherwise kept): under pytest-xdist the long ones start at
    once on every worker and the short ones fill in around them, instead of one long test running
    alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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
