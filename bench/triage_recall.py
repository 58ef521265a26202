"""Which planted studies a CI-policy triage sends to the extraction attack, per detector (issue target:
every planted study the full fine-tune memorized among the attacked prompts, at most 1% of generic
training prompts flagged).

    .venv/bin/python bench/triage_recall.py [--models models/demo] [--variants hospital,base] \
        [--detectors wen,jeon] [--schedule N] [--steps S] [--holdout N] [--out bench/results/triage-recall.json]

Runs the scan's own code (`run_noise_magnitude`, then `choose_prompts`) with `policies/ci.yaml` as
shipped except for the detector, the triage schedule and probe steps where given (and
`calibration.small_holdout: warn`: the shipped data's holdout has 100 studies, the CI policy's 1%
quantile asks for 299, so its threshold is the largest holdout score, which bounds a 3% false-alarm
share at 95%; ``--holdout 300`` calibrates on 300 fresh studies instead, enough for 1%). For each
model and detector it prints how many of the 12 planted captions triage flags and how many the
attack takes (the policy's rule: flagged by score, then the next highest up to the 64-prompt cap less
the 8 sampled at random), the share of generic training captions flagged, and seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml
from criterion_recall import holdout_of  # this folder is on sys.path when run as a script

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint, summarize
from memaudit.data import ImageCaptionDataset
from memaudit.metrics.triage import DETECTORS
from memaudit.paths import POLICIES_DIR
from memaudit.policy import Policy
from memaudit.scan.context import ScanContext
from memaudit.scan.extraction_check import choose_prompts
from memaudit.scan.noise_check import run_noise_magnitude, triage_schedule
from memaudit.scan.progress import SilentProgress
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model

HERE = Path(__file__).resolve().parent


def ci_policy_with(detector: str, *, schedule: int | None = None, steps: int | None = None) -> Policy:
    """The shipped CI policy with another triage detector (generations kept unless it needs more) and,
    where given, another triage schedule and number of probe steps (Wen's; the others probe one)."""
    content = yaml.safe_load((POLICIES_DIR / "ci.yaml").read_text())
    triage = content["checks"]["noise_magnitude"]
    triage["detector"] = detector
    if schedule is not None:
        triage["num_inference_steps"] = schedule
    if DETECTORS[detector].first_step_only:
        triage["steps"] = 1
    elif steps is not None:
        triage["steps"] = steps
    triage["generations"] = max(triage["generations"], DETECTORS[detector].min_generations)
    content.setdefault("calibration", {})["small_holdout"] = "warn"
    content["checks"]["nearest_neighbour"]["extractor"] = "pixels"  # not run here; no weights needed
    return Policy.model_validate(content)


def measure(
    checkpoint, train: ImageCaptionDataset, holdout: ImageCaptionDataset, data, detector: str, **triage
) -> dict:
    policy = ci_policy_with(detector, **triage)
    context = ScanContext(
        policy=policy,
        train=train,
        holdout=holdout,
        progress=SilentProgress(),
        pipeline=checkpoint.pipeline,
        image_side=summarize(checkpoint).image_size,
    )
    started = time.perf_counter()
    outcome, scores = run_noise_magnitude(context)
    seconds = time.perf_counter() - started
    flags = [prompt.flagged for prompt in outcome.noise_magnitude.train]
    chosen = choose_prompts(context, scores, flags)
    planted = set(data.planted_captions)
    groups = context.train_groups
    generic_flagged = sum(f for g, f in zip(groups, flags, strict=True) if g.caption not in planted)
    generic_count = sum(g.caption not in planted for g in groups)
    attacked = {group.caption: reason for group, reason in chosen}
    order = sorted(range(len(groups)), key=lambda i: -float(scores[i]))  # ties keep caption order
    ranks = sorted(1 + order.index(i) for i, g in enumerate(groups) if g.caption in planted)
    return {
        "detector": detector,
        "generations": policy.checks.noise_magnitude.generations,
        "schedule": triage_schedule(context),
        "steps": policy.checks.noise_magnitude.steps,
        "holdout": len(context.holdout_groups),  # holdout captions the flag threshold is calibrated on
        "ranked_prompts": policy.checks.extraction.ranked_prompts,  # the attack budget's rule
        "planted": len(planted),
        "planted_flagged": sum(f for g, f in zip(groups, flags, strict=True) if g.caption in planted),
        "planted_attacked": sum(caption in attacked for caption in planted),
        "planted_attacked_by": sorted(attacked[c] for c in planted if c in attacked),
        "generic_flagged_share": generic_flagged / generic_count,
        "attacked": len(chosen),
        "threshold": outcome.noise_magnitude.threshold,
        # Where the planted captions rank by score among all training captions: a ranked budget of the
        # largest would have attacked every one of them.
        "planted_ranks": ranks,
        "prompts": len(groups),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=DEMO_MODELS_DIR, help="Folder with base/ and hospital/.")
    parser.add_argument("--variants", default="hospital,base")
    parser.add_argument("--detectors", default=",".join(DETECTORS), help="Registered detectors to measure.")
    parser.add_argument("--schedule", type=int, default=None, help="Triage schedule (default: the policy's).")
    parser.add_argument("--steps", type=int, default=None, help="Wen's probe steps (default: the policy's).")
    parser.add_argument("--holdout", type=int, default=None, help="Fresh holdout studies (default: the bench's).")
    parser.add_argument("--data", type=Path, default=Path("build/triage-recall"), help="Where data is regenerated.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "triage-recall.json")
    args = parser.parse_args()
    data = data_for_model(args.models / "hospital", args.data)  # the base is judged on the same captions
    results: dict[str, list[dict]] = {}
    print("| model | detector | gens | schedule / steps | planted flagged | planted attacked ", end="")
    print("| generic flagged | attacked | all planted in top | s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    train, holdout = ImageCaptionDataset(data.train), ImageCaptionDataset(holdout_of(data, args.holdout, args.data))
    for variant in args.variants.split(","):
        checkpoint = load_checkpoint(args.models / variant)  # once per model, shared by every detector
        for detector in args.detectors.split(","):
            row = measure(checkpoint, train, holdout, data, detector, schedule=args.schedule, steps=args.steps)
            results.setdefault(variant, []).append(row)
            print(
                f"| {variant} | {detector} | {row['generations']} | {row['schedule']} / {row['steps']} "
                f"| {row['planted_flagged']}/{row['planted']} "
                f"| {row['planted_attacked']}/{row['planted']} | {row['generic_flagged_share']:.1%} "
                f"| {row['attacked']} | {row['planted_ranks'][-1]} of {row['prompts']} "
                f"| {row['seconds']:.0f} |",
                flush=True,
            )
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
