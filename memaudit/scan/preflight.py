"""Before any model work: every input a long scan needs is checked first, so that a bad one fails in
seconds (exit 2, naming it) instead of after hours, and nothing is written to the output folder."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from memaudit.attest.keys import load_private_key
from memaudit.data import ImageCaptionDataset
from memaudit.data.overlap import find_overlap
from memaudit.errors import DataError, MemauditError
from memaudit.policy import Policy
from memaudit.policy.holdout_needs import holdout_counts, holdout_needs
from memaudit.scan.progress import Progress
from memaudit.scan.prompts import prompt_groups

DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_writable_folder(folder: Path, option: str) -> None:
    """``folder`` (given as ``option``) is a folder, or can be made one, and can be written; it is not
    created here."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MemauditError(f"{option} {folder}: a file is in the way; give a folder")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise MemauditError(f"{option} {folder}: {existing} is a file, so the folder cannot be created")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MemauditError(f"{option} {folder}: {existing} is not writable")


def check_output_folder(out: Path) -> None:
    check_writable_folder(out, "--out")


def check_device(device: str) -> None:
    """A torch device this machine has: cpu, cuda[:N] with CUDA present, or mps where available."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise MemauditError(f"--device {device}: not a device name (use cpu, cuda, cuda:N or mps)") from error
    if parsed.type not in DEVICE_TYPES:
        raise MemauditError(f"--device {device}: memaudit runs on {', '.join(DEVICE_TYPES)}")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise MemauditError(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__})")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise MemauditError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise MemauditError(f"--device {device}: Apple MPS is not available on this machine")


def check_run_options(*, out: Path, sign_key: Path | None, device: str, feature_cache: Path | None = None) -> None:
    """The options a command can check in milliseconds: output folder, signing key, device, and the
    cache folder (features, comparison pixels and the work a scan resumes from are written there)."""
    check_output_folder(out)
    if feature_cache is not None:
        check_writable_folder(feature_cache, "--feature-cache")
    if sign_key is not None:
        if not Path(sign_key).is_file():
            raise MemauditError(f"{sign_key}: no such signing key (create one with `memaudit keygen --out DIR`)")
        load_private_key(sign_key)  # an Ed25519 private key, not a public key or anything else
    check_device(device)


def check_images(dataset: ImageCaptionDataset, label: str, progress: Progress) -> None:
    """Decode every image once (a corrupt, empty or oversized file is named here, not mid-scan)."""
    advance = progress.stage(f"checking {label} images", len(dataset))
    for index in range(len(dataset)):
        dataset.load_image(index)
        advance(1)


def check_holdout_size(holdout: ImageCaptionDataset, *, policy: Policy, with_model: bool, tokenizer=None) -> None:
    """Each calibrated threshold needs enough holdout values for its quantile at the policy's confidence
    (DESIGN 3.5; what each needs: policy/holdout_needs.py); too few is an error naming the size needed,
    unless the policy accepts a warning.

    The noise-magnitude threshold is calibrated on distinct prompts as the model reads them: with the
    model's ``tokenizer``, captions that differ only past its cut (CLIP: 77 tokens) count once; without
    it, distinct captions (an upper bound; the scan counts again with the tokenizer before any UNet
    work). A rule on a patient-level membership metric needs enough distinct holdout patients.
    """
    if policy.calibration.small_holdout == "warn":
        return
    prompts = _holdout_prompts(holdout, tokenizer) if tokenizer is not None else None
    for need in holdout_needs(policy, holdout_counts(holdout, prompts=prompts), with_model=with_model):
        if need.missing:
            raise DataError(
                f"holdout set {holdout.source} has {need.available} {need.unit}; policy {policy.name}'s "
                f"{need.setting} (a false-alarm share of {need.false_alarm:.3g}) at calibration.confidence "
                f"{need.confidence:g} needs at least {need.required}. Give a larger holdout, a larger quantile, "
                "or calibration.small_holdout: warn"
            )


def _holdout_prompts(holdout: ImageCaptionDataset, tokenizer) -> tuple[int, str]:
    """The noise-magnitude calibration's n, distinct prompts to the model, and what they are."""
    groups = prompt_groups(holdout, tokenizer)
    captions, truncated = sum(g.captions for g in groups), sum(g.truncated for g in groups)
    return len(groups), (
        f"distinct prompts to the model ({captions} distinct captions, {truncated} of them longer than the text "
        f"encoder's {tokenizer.model_max_length} tokens and truncated)"
    )


def check_datasets(
    train: ImageCaptionDataset,
    holdout: ImageCaptionDataset,
    *,
    policy: Policy,
    progress: Progress,
    with_model: bool = True,
    tokenizer=None,
) -> None:
    """Train and holdout must not overlap (unless the policy allows it), the holdout must be large
    enough for the policy's calibration (prompts counted as ``tokenizer`` reads them, when given), and
    every image must decode."""
    overlap = find_overlap(train, holdout)
    if overlap and not policy.data.allow_train_holdout_overlap:
        raise DataError(
            f"training set {train.source} and holdout set {holdout.source} overlap: {overlap.describe()}. "
            "Calibrating on training images makes every threshold too small; give a holdout of unseen "
            "images (or set data.allow_train_holdout_overlap in the policy)"
        )
    check_holdout_size(holdout, policy=policy, with_model=with_model, tokenizer=tokenizer)
    if policy.checks.reidentification.enabled:
        from memaudit.scan.reidentification_check import check_inputs

        check_inputs(train, holdout, policy)
    check_images(train, "training", progress)
    check_images(holdout, "holdout", progress)
