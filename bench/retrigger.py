"""Re-triggering (DESIGN 3.8): do a model's memorized prompts bring their training image back under small
perturbations of the text embedding, and does a remediated model only hide its copies?

    .venv/bin/python bench/retrigger.py --before SCAN/result.json [--remediated MODEL] \
        [--models models/demo] [--policy demo] [--out bench/results/retrigger.json]

`--before` is a scan of the hospital model (e.g. the demo's scan-hospital/result.json, or
`memaudit scan models/demo/hospital ... --policy demo`); its extracted and flagged prompts are tested on
the hospital model itself (copies come back at small perturbations: the check works) and on the
remediated model (the answer to "gone or hidden?"), with the policy's retrigger settings (enabled or
not: this script runs the check directly).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint
from memaudit.checkpoint.summary import summarize
from memaudit.data import ImageCaptionDataset
from memaudit.policy import load_policy
from memaudit.results.reading import read_scan_result
from memaudit.sampling.denoise import latent_side
from memaudit.scan.context import ScanContext
from memaudit.scan.progress import SilentProgress
from memaudit.scan.retrigger_check import run_retrigger
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="A scan of the hospital model (result.json).")
    parser.add_argument("--remediated", type=Path, help="A remediated model to test against the same prompts.")
    parser.add_argument("--models", type=Path, default=DEMO_MODELS_DIR)
    parser.add_argument("--policy", default="demo")
    parser.add_argument("--data", type=Path, default=Path("build/retrigger"), help="Where data is regenerated.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "retrigger.json")
    args = parser.parse_args()
    data = data_for_model(args.models / "hospital", args.data)
    policy = load_policy(args.policy).policy
    before = read_scan_result(args.before)
    models = {"hospital": args.models / "hospital"} | ({"remediated": args.remediated} if args.remediated else {})
    figures = {"policy": policy.name, "settings": policy.checks.retrigger.model_dump(), "models": {}}
    for name, path in models.items():
        started = time.perf_counter()
        checkpoint = load_checkpoint(path)
        pipeline = checkpoint.pipeline
        side = summarize(checkpoint).vae_scale_factor * latent_side(pipeline, policy.sampling.resolution)
        context = ScanContext(
            policy=policy, train=ImageCaptionDataset(data.train), holdout=ImageCaptionDataset(data.holdout),
            progress=SilentProgress(), pipeline=pipeline, image_side=side,
        )  # fmt: skip
        outcome = run_retrigger(context, {}, before)
        prompts = outcome.retrigger.prompts
        figures["models"][name] = {
            "message": outcome.message,
            "prompts": [p.model_dump() for p in prompts],
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"{name}: {outcome.message} ({figures['models'][name]['seconds']} s)")
        for prompt in prompts:
            tried = ", ".join(f"{a.method} {a.scale:g}: {'copy' if a.extracted else '-'}" for a in prompt.attempts)
            print(f"  {prompt.item_ids[0]} ({prompt.source}): smallest {prompt.smallest_scale}; {tried}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures in {args.out}")


if __name__ == "__main__":
    main()
