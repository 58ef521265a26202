"""Resumable scans: a killed scan continues from its finished units and writes the same result.json."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import memaudit.scan.extraction_check as extraction_check
from memaudit.scan import ScanRequest, run_scan
from memaudit.scan.work_log import WorkLog, work_key
from memaudit.tiny.memorizer import build_memorizer
from tests.images import write_dataset
from tests.scan.recording_progress import RecordingProgress

POLICY = """
name: resume-test
sampling: {seed: 0, scheduler: ddim, num_inference_steps: 6, guidance_scale: 2.0, batch_size: 5}
calibration: {small_holdout: warn}
checks:
  noise_magnitude: {steps: 1, generations: 2, calibration_quantile: 0.9}
  extraction: {generations: 8, prompts: all}
  nearest_neighbour: {extractor: pixels, generations_per_prompt: 1}
  membership: {enabled: true}
rules:
  no-extracted-images: {metric: extraction.extracted_count, at_most: 0}
"""


def test_work_key_changes_with_every_input():
    base = {"model": ["unet:aa"], "train": "t", "holdout": "h", "policy": {"seed": 0}, "before": None}
    key = work_key(**base)
    assert key == work_key(**base)
    for field, other in (("model", ["unet:ab"]), ("train", "u"), ("holdout", "i"), ("policy", {"seed": 1})):
        assert work_key(**(base | {field: other})) != key
    assert work_key(**(base | {"before": "digest"})) != key


def test_units_round_trip_floats_exactly(tmp_path):
    log = WorkLog(tmp_path / "work")
    values = [0.1, 1 / 3, 2.0**-1074, 1e308, -0.0]
    log.put("unit", values)
    assert log.get("unit") == values and log.get("missing") is None and log.finished() == 1
    log.remove()
    assert not (tmp_path / "work").exists()


@pytest.fixture(scope="module")
def memorizer(tiny_pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    (root / "policy.yaml").write_text(POLICY)
    checkpoint, train, holdout, _ = build_memorizer(tiny_pipeline, root, planted=3, generic=6, holdout=8)
    return root, checkpoint, train, holdout


def _killed_then_resumed(memorizer, tmp_path, monkeypatch, *, module, function: str, dies_after: int):
    """The scan uninterrupted; then killed when ``module.function`` is called for the ``dies_after + 1``-th
    time, and rerun. Returns (uninterrupted, resumed, its work folder as the kill left it, calls in the rerun)."""
    root, checkpoint, train, holdout = memorizer
    request = ScanRequest(train=train, holdout=holdout, policy=root / "policy.yaml", model=checkpoint.source)
    uninterrupted = run_scan(request, checkpoint=checkpoint)
    cache = tmp_path / "cache"
    request = ScanRequest(
        train=train, holdout=holdout, policy=root / "policy.yaml", model=checkpoint.source, feature_cache=cache
    )
    original, calls = getattr(module, function), []

    def dies(*args, **kwargs):
        if len(calls) == dies_after:
            raise RuntimeError("killed")
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, function, dies)
    with pytest.raises(RuntimeError, match="killed"):
        run_scan(request, checkpoint=checkpoint)
    (work,) = (cache / "scans").iterdir()
    left = sorted(path.name for path in work.glob("*.unit"))
    calls.clear()
    monkeypatch.setattr(module, function, lambda *a, **k: calls.append(1) or original(*a, **k))
    progress = RecordingProgress()
    resumed = run_scan(request, checkpoint=checkpoint, progress=progress)
    assert not work.exists()  # a finished scan leaves nothing to resume
    assert progress.notes == [f"resuming: {len(left)} finished units of an earlier run of this scan in {work}"]
    return uninterrupted, resumed, left, len(calls)


def test_an_interrupted_scan_resumes_without_redoing_finished_work_and_gives_the_same_result(
    memorizer, tmp_path, monkeypatch
):
    uninterrupted, resumed, left, calls = _killed_then_resumed(
        memorizer, tmp_path, monkeypatch, module=extraction_check, function="attack_candidate", dies_after=3
    )
    assert (
        len([n for n in left if n.startswith("attack-")]) == 3
        and len([n for n in left if n.startswith("triage-")]) == 2
    )
    assert any(n.startswith("calibration-") for n in left)  # the holdout search is not redone either
    prompts = len(uninterrupted.checks["extraction"].extraction.attacked)
    assert calls == prompts - 3  # the three finished attacks were read back, not redone
    assert resumed.to_json() == uninterrupted.to_json()


def test_a_scan_killed_in_the_generated_sample_reads_its_finished_chunks_back(memorizer, tmp_path, monkeypatch):
    import memaudit.scan.generated_sample as generated_sample
    import memaudit.scan.neighbour_check as neighbour_check

    monkeypatch.setattr(neighbour_check, "FEATURE_BATCH", 1)  # 9 prompts, batches of 5: chunks of 5 and 4
    monkeypatch.setattr(generated_sample, "SAMPLE_CHUNK", 5)
    uninterrupted, resumed, left, calls = _killed_then_resumed(
        memorizer, tmp_path, monkeypatch, module=generated_sample, function="_chunk_value", dies_after=1
    )
    assert [n for n in left if n.startswith("sample-")] == ["sample-0-5.unit"]
    assert calls == 1  # the first chunk was read back, only the second was generated
    assert resumed.to_json() == uninterrupted.to_json()


def test_evidence_images_are_never_resumed(memorizer, tmp_path):
    root, checkpoint, train, holdout = memorizer
    request = ScanRequest(
        train=train, holdout=holdout, policy=root / "policy.yaml", model=checkpoint.source,
        feature_cache=tmp_path / "cache", include_evidence_images=True,
    )  # fmt: skip
    from memaudit.scan.run import prepare_scan

    assert prepare_scan(request, checkpoint=checkpoint).context.work is None


def _captions(count: int) -> list[str]:
    words = ["small", "moderate", "large", "left", "right", "bilateral", "pleural", "effusion", "nodule", "stable"]
    return [f"{words[k % 10]} {words[(k // 10) % 10]} {words[(k // 3) % 10]} lung" for k in range(count)]


def write_scan_data(folder, *, train: int, holdout: int, seed: int) -> None:
    """``folder``/train and /holdout: random 16 px images, distinct captions (holdout reuses the first)."""
    rng = np.random.default_rng(seed)
    captions = _captions(train)
    images = list(rng.integers(0, 256, (train + holdout, 16, 16), dtype=np.uint8))
    write_dataset(folder / "train", images[:train], captions, prefix="t")
    write_dataset(folder / "holdout", images[train:], captions[:holdout], prefix="h")


def killed_when(argv, *, until, timeout=300, env=None) -> bool:
    """Start ``argv``; kill -9 it and every process under it once ``until()`` holds (torchrun starts its
    ranks in sessions of their own, so its process group alone would leave them running). True if it
    was caught running."""
    import psutil

    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if until():
            ranks = psutil.Process(process.pid).children(recursive=True)
            os.killpg(process.pid, signal.SIGKILL)
            for rank in ranks:
                with contextlib.suppress(psutil.NoSuchProcess):
                    rank.kill()
            psutil.wait_procs(ranks, timeout=60)
            process.wait(timeout=60)
            return True
        time.sleep(0.05)
    process.wait(timeout=60)
    return False


@pytest.mark.slow
def test_kill_9_halfway_then_rerun_writes_a_byte_identical_result(tiny_folder, tmp_path):
    write_scan_data(tmp_path, train=60, holdout=12, seed=0)
    (tmp_path / "policy.yaml").write_text(POLICY.replace("generations: 8,", "generations: 16,"))
    cache = tmp_path / "cache"

    def argv(out):
        return [sys.executable, "-m", "memaudit", "scan", str(tiny_folder), "--train", str(tmp_path / "train"),
                "--holdout", str(tmp_path / "holdout"), "--policy", str(tmp_path / "policy.yaml"), "--out", str(out),
                "--feature-cache", str(cache)]  # fmt: skip

    assert subprocess.run(argv(tmp_path / "whole"), capture_output=True, timeout=600).returncode in (0, 1)
    attacked = lambda: len(list((cache / "scans").glob("*/attack-*.unit")))  # noqa: E731
    assert killed_when(argv(tmp_path / "resumed"), until=lambda: attacked() >= 20), "never caught the attack running"
    assert 20 <= attacked() < 60 and not (tmp_path / "resumed" / "result.json").exists()
    assert subprocess.run(argv(tmp_path / "resumed"), capture_output=True, timeout=600).returncode in (0, 1)
    whole = (tmp_path / "whole" / "result.json").read_bytes()
    assert (tmp_path / "resumed" / "result.json").read_bytes() == whole
    assert json.loads(whole)["checks"]["extraction"]["extraction"]["attacked"]


def _killed(memorizer, tmp_path, monkeypatch, *, dies_after: int):
    """The scan uninterrupted, then killed in its ``dies_after + 1``-th attack: (uninterrupted, request, work)."""
    root, checkpoint, train, holdout = memorizer
    request = ScanRequest(train=train, holdout=holdout, policy=root / "policy.yaml", model=checkpoint.source)
    uninterrupted = run_scan(request, checkpoint=checkpoint)
    request = dataclasses.replace(request, feature_cache=tmp_path / "cache")
    original, calls = extraction_check.attack_candidate, []

    def dies(*args, **kwargs):
        if len(calls) == dies_after:
            raise RuntimeError("killed")
        calls.append(1)
        return original(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(extraction_check, "attack_candidate", dies)
        with pytest.raises(RuntimeError, match="killed"):
            run_scan(request, checkpoint=checkpoint)
    (work,) = (tmp_path / "cache" / "scans").iterdir()
    return uninterrupted, request, work


def _forge(path, change) -> None:
    """Rewrite a unit's value as someone without the cache key can: the header kept, the value changed."""
    header, _, value = path.read_bytes().partition(b"\n")
    path.write_bytes(header + b"\n" + json.dumps(change(json.loads(value))).encode())


@pytest.mark.parametrize("forgery", ["extracted", "not extracted", "garbage", "another scan's unit"])
def test_a_forged_work_unit_is_named_recomputed_and_the_result_is_the_uninterrupted_one(
    memorizer, tmp_path, monkeypatch, forgery
):
    """Forging one attack unit of a killed scan once flipped the verdict on resume (either way)."""
    _, checkpoint, _, _ = memorizer
    uninterrupted, request, work = _killed(memorizer, tmp_path, monkeypatch, dies_after=3)
    unit = sorted(work.glob("attack-*.unit"))[0]
    if forgery == "garbage":
        unit.write_bytes(b"\x00not json")
    elif forgery == "another scan's unit":
        other = WorkLog(tmp_path / "other-scan")
        other.put(unit.stem, {"forged": True})
        unit.write_bytes(other._path(unit.stem).read_bytes())
    else:
        _forge(unit, lambda record: record | {"extracted": forgery == "extracted", "distance": 0.0})
    progress = RecordingProgress()
    resumed = run_scan(request, checkpoint=checkpoint, progress=progress)
    stale = [note for note in progress.notes if note.startswith("warning: work log")]
    assert len(stale) == 1 and str(unit) in stale[0] and stale[0].endswith("recomputing it"), progress.notes
    assert resumed.to_json() == uninterrupted.to_json()


def test_a_changed_scheduler_is_another_model_to_the_resume_key(memorizer, tiny_folder, tmp_path):
    """Resuming after prediction_type changed once reused the old triage units."""
    import shutil

    from memaudit.scan.run import prepare_scan

    root, _, train, holdout = memorizer
    folders = []
    for name, prediction in (("epsilon", None), ("v", "v_prediction")):
        folder = shutil.copytree(tiny_folder, tmp_path / name)
        if prediction:
            config = folder / "scheduler" / "scheduler_config.json"
            config.write_text(json.dumps(json.loads(config.read_text()) | {"prediction_type": prediction}))
        folders.append(folder)
    requests = [
        ScanRequest(train=train, holdout=holdout, policy=root / "policy.yaml", model=f, feature_cache=tmp_path / "c")
        for f in folders
    ]
    prepared = [prepare_scan(request) for request in requests]
    assert prepared[0].checkpoint.weight_files == prepared[1].checkpoint.weight_files  # same weights
    assert prepared[0].checkpoint.digest != prepared[1].checkpoint.digest
    assert prepared[0].context.work.folder != prepared[1].context.work.folder
