"""The plan of each shipped policy at hospital scale: what `memaudit scan --plan` counts for an SD 1.5
fine-tune at 512 px on 10^5 distinct captions and images, with a 1,000-study holdout.

    .venv/bin/python bench/plans.py [--captions 100000] [--holdout 1000] [--unet-rate 62] [--json OUT]

Counts come from memaudit.scan.plan (the same code as `--plan`, checked against a real scan's UNet
calls by tests/scan/test_plan.py). Time is the UNet evaluations alone at ``--unet-rate`` sample
evaluations per second. The default, 62/s, is an A100's: a public diffusers benchmark (torch 2.1,
SDPA, fp16, batch 1, 512 px) runs SD 1.5 at 31 guided steps per second, each step two evaluations;
batching raises it. Decodes, features and tiled-L2 comparisons come on top: `memaudit scan --plan`
on the device measures them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import memaudit  # noqa: F401  (runtime guards)
from memaudit.paths import POLICIES_DIR
from memaudit.policy import load_policy
from memaudit.scan.plan import PlanSizes, plan_scan

GENERATION_SIDE = 512


def sizes_for(policy, *, captions: int, holdout: int) -> PlanSizes:
    return PlanSizes(
        train_prompts=captions,
        train_rows=captions,
        train_images=captions,
        train_items=captions,
        holdout_prompts=holdout,
        holdout_rows=holdout,
        holdout_items=holdout,
        comparison_side=min(policy.checks.extraction.comparison_side or GENERATION_SIDE, GENERATION_SIDE),
    )


def hours(evaluations: int, rate: float) -> float:
    return evaluations / rate / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", type=int, default=100_000)
    parser.add_argument("--holdout", type=int, default=1_000)
    parser.add_argument("--unet-rate", type=float, default=62.0, help="UNet sample evaluations per second")
    parser.add_argument("--json", type=Path, help="Also write the plans here.")
    args = parser.parse_args()
    plans = {}
    for path in sorted(POLICIES_DIR.glob("*.yaml")):
        policy = load_policy(path).policy
        plan = plan_scan(policy, sizes_for(policy, captions=args.captions, holdout=args.holdout), costs=None)
        plans[policy.name] = plan.model_dump(mode="json")
        total = hours(plan.unet_evaluations, args.unet_rate)
        print(
            f"\n### {policy.name}: {plan.unet_evaluations:,} UNet evaluations, {total:,.1f} h at {args.unet_rate:g}/s"
        )
        print("| stage | UNet evaluations | hours | decodes | tiled-L2 pairs | note |")
        print("|---|---:|---:|---:|---:|---|")
        for stage in plan.stages:
            print(
                f"| {stage.stage} | {stage.unet_evaluations:,} | {hours(stage.unet_evaluations, args.unet_rate):,.1f} "
                f"| {stage.vae_decodes:,} | {stage.tiled_l2_comparisons:,} | {stage.note} |"
            )
        print(f"cache disk {plan.disk_bytes / 2**30:.1f} GiB (comparison pixels and features)")
    if args.json:
        args.json.write_text(json.dumps(plans, indent=2) + "\n")


if __name__ == "__main__":
    main()
