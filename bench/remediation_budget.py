"""`memaudit remediate` on the hospital model with the full fine-tune's training budget.

    .venv/bin/python bench/remediation_budget.py [--models models/demo] [--work build/remediation-full-budget]

The demo retrains the mask its search chooses (DiffFit on every transformer block) for only 500
steps to stay within its time budget. This runs the command itself with that mask (`--mask`, no
search) and the demo policy, changed only to retrain for as many steps as the hospital model's full
fine-tune took (from its recipe), and compares before (the hospital model, i.e. full fine-tuning)
with after: extracted images, AMD, near-copy rate, FID and their ratios, and the wall time from the
start of the before-scan to the end of the after-scan (~25 minutes on 2 CPU cores).
Figures go to bench/results/remediation-full-budget.json (or --figures). A rerun with the same --work reads the
finished run instead of repeating it.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime
from pathlib import Path

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint
from memaudit.cli import run
from memaudit.finetune.mask_spec import parse_mask
from memaudit.paths import POLICIES_DIR
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model

HERE = Path(__file__).resolve().parent
FIGURES = HERE / "results" / "remediation-full-budget.json"
METRICS = {
    "extracted": "extraction.extracted_count",
    "amd": "nearest_neighbour.amd",
    "near_copy_rate": "nearest_neighbour.near_copy_rate",
    "fid": "fid.fid",
}


def full_budget_policy(steps: int) -> str:
    """The demo policy's text with only its name and remediation.retrain_steps changed."""
    text = (POLICIES_DIR / "demo.yaml").read_text(encoding="utf-8")
    text, named = re.subn(r"(?m)^name: demo$", f"name: demo-{steps}-step-retrain", text)
    text, changed = re.subn(r"(?m)^(\s+retrain_steps:) \d+$", rf"\g<1> {steps}", text)
    if (named, changed) != (1, 1):
        raise SystemExit("policies/demo.yaml no longer has one 'name: demo' and one 'retrain_steps:' line")
    return text


def scan_figures(folder: Path) -> dict:
    metrics = {}
    for check in json.loads((folder / "result.json").read_text())["checks"].values():
        metrics |= check.get("metrics", {})
    return {name: metrics[key] for name, key in METRICS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=DEMO_MODELS_DIR, help="Folder with base/ and hospital/.")
    parser.add_argument("--work", type=Path, default=Path("build/remediation-full-budget"))
    parser.add_argument("--figures", type=Path, default=FIGURES, help="Where the figures (JSON) go.")
    parser.add_argument(
        "--accept-small-holdout",
        action="store_true",
        help="smoke runs on tiny data: calibrate with a warning instead of refusing a small holdout",
    )
    args = parser.parse_args()
    data = data_for_model(args.models / "hospital", args.work / "data")
    inputs, out = args.work / "inputs", args.work / "run"
    if not (out / "remediation.json").is_file():
        inputs.mkdir(parents=True, exist_ok=True)
        policy = full_budget_policy(data.recipe.steps)
        if args.accept_small_holdout:
            policy += "calibration: {small_holdout: warn}\n"
        (inputs / "policy.yaml").write_text(policy)
        unet = load_checkpoint(args.models / "base").pipeline.unet
        mask = json.loads(parse_mask("all", unet).to_json())
        (inputs / "mask.json").write_text(json.dumps({"space": "difffit", **mask}, indent=2) + "\n")
        argv = ["remediate", str(args.models / "hospital"), "--base", str(args.models / "base")]
        argv += ["--train", str(data.train), "--holdout", str(data.holdout), "--out", str(out)]
        argv += ["--policy", str(inputs / "policy.yaml"), "--mask", str(inputs / "mask.json")]
        argv += ["--search-anyway"]  # measure the remediation even where the before-scan passes (smoke runs)
        code = run(argv)
        if code == 2:
            raise SystemExit("memaudit remediate failed (exit 2)")
    record = json.loads((out / "remediation.json").read_text())
    before, after = scan_figures(out / "before"), scan_figures(out / "after")
    started = json.loads((out / "before" / "run.json").read_text())["started"]
    finished = json.loads((out / "after" / "run.json").read_text())["finished"]
    figures = {
        "command": ".venv/bin/python bench/remediation_budget.py",
        "policy": record["policy"],
        "space": record["space"],
        "mask": record["mask"],
        "retrain_steps": data.recipe.steps,
        "before": before,
        "after": after,
        "verdict": {"before": record["before"]["verdict"], "after": record["after"]["verdict"]},
        "extracted_cut": 1 - after["extracted"] / before["extracted"] if before["extracted"] else None,
        "fid_ratio": after["fid"] / before["fid"],
        "amd_ratio": after["amd"] / before["amd"],
        "wall_seconds": (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds(),
    }
    args.figures.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{'':16}{'before (full fine-tune)':>26}{'after (DiffFit, all blocks)':>30}")
    for name in METRICS:
        print(f"{name:16}{before[name]:>26.4f}{after[name]:>30.4f}")
    cut = figures["extracted_cut"]
    print("nothing extracted before; " if cut is None else f"extracted images cut by {cut:.0%}; ", end="")
    print(f"FID ratio {figures['fid_ratio']:.3f}; ", end="")
    print(
        f"AMD ratio {figures['amd_ratio']:.2f}; {figures['wall_seconds'] / 60:.1f} min from before-scan to after-scan"
    )


if __name__ == "__main__":
    main()
