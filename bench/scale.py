"""Does a scan's memory stay bounded as the training set grows, and does its plan predict its time?

    .venv/bin/python bench/scale.py [--sizes 500,1000,2000,4000] [--side 512] [--json OUT]

Measured in one run, each scan in a fresh process (its own peak resident memory):
1. `memaudit scan --images` of a 16-image release against training sets of the given sizes at
   ``--side`` px (smooth random images), 64 holdout images, comparing at 128 px: wall time and peak
   RSS. The goal is a peak that does not grow with the training set beyond the caches' fixed buffers
   (< 1.2x from the smallest to the largest); before the pixel store, every training image was
   stacked in RAM as float32 (3 MiB each at 512 px).
2. The same scans' `--plan` estimate against their measured time.
3. The extraction attack's generation on the tiny model: batches spanning prompts (memaudit) against
   one prompt at a time (the previous way), same seeds, prompts per second.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

POLICY = """
name: scale-bench
sampling: {seed: 0, resolution: null}
calibration: {small_holdout: warn}
checks:
  noise_magnitude: {enabled: false}
  extraction: {comparison_side: 128}
  nearest_neighbour: {extractor: pixels}
  fid: {enabled: false}
rules:
  no-extracted-images: {metric: extraction.extracted_count, at_most: 0}
"""


def write_images(folder: Path, count: int, *, side: int, seed: int, prefix: str) -> list[dict]:
    """Smooth random grayscale images (16 x 16 noise, upsampled), one PNG each; their manifest rows."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        small = Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8))
        small.resize((side, side), Image.BILINEAR).save(folder / f"{prefix}{index}.png")
        rows.append({"id": f"{prefix}{index}", "file_name": f"{prefix}{index}.png", "text": f"study {prefix}{index}"})
    return rows


def write_manifest(folder: Path, rows: list[dict]) -> Path:
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def child(argv: list[str]) -> None:
    """Run one CLI command in this process and print its seconds (from the process's start, as a user
    waits for it and as the plan counts it) and peak RSS as JSON."""
    import psutil

    from memaudit.cli import run

    code = run(argv)
    seconds = time.time() - psutil.Process().create_time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"code": int(code), "seconds": seconds, "peak_rss": peak}), file=sys.stderr)


def measured(argv: list[str]) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True, text=True)
    return json.loads(result.stderr.strip().splitlines()[-1]) | {"stdout": result.stdout}


def scans(sizes: list[int], *, side: int, work: Path) -> list[dict]:
    train_rows = write_images(work / "train", max(sizes), side=side, seed=1, prefix="t")
    write_manifest(work / "holdout", write_images(work / "holdout", 64, side=side, seed=2, prefix="h"))
    write_manifest(work / "release", write_images(work / "release", 16, side=side, seed=3, prefix="r"))
    (work / "policy.yaml").write_text(POLICY)
    figures = []
    for size in sizes:
        train = work / f"train-{size}"
        train.mkdir()
        for row in train_rows[:size]:
            (train / row["file_name"]).unlink(missing_ok=True)
            (train / row["file_name"]).symlink_to(work / "train" / row["file_name"])
        write_manifest(train, train_rows[:size])
        argv = ["scan", "--images", str(work / "release"), "--train", str(train), "--holdout", str(work / "holdout")]
        argv += ["--policy", str(work / "policy.yaml"), "--feature-cache", str(work / f"cache-{size}")]
        plan = json.loads(measured([*argv, "--out", str(work / "plan"), "--plan", "--json"])["stdout"])
        scan = measured([*argv, "--out", str(work / f"out-{size}")])
        stages = json.loads((work / f"out-{size}" / "run.json").read_text())["stage_seconds"]
        planned = {stage["stage"]: stage["seconds"] for stage in plan["stages"]}
        figures.append(
            {
                "train": size,
                "seconds": scan["seconds"],
                "peak_rss": scan["peak_rss"],
                "planned": plan["seconds"],
                "stage_seconds": stages,
                "planned_stages": planned,
            }
        )
        print(
            f"train {size:>5}: scan {scan['seconds']:7.1f} s, peak RSS {scan['peak_rss'] / 2**20:7.0f} MiB, "
            f"plan {plan['seconds']:7.1f} s (x{plan['seconds'] / scan['seconds']:.2f} of measured)",
            flush=True,
        )
        print(f"  measured stages: {', '.join(f'{k} {v:.1f} s' for k, v in stages.items())}")
        print(f"  planned stages:  {', '.join(f'{k} {v:.1f} s' for k, v in planned.items())}", flush=True)
    return figures


def generation(prompts: int = 12, per_prompt: int = 3) -> dict:
    """Prompts per second: batches spanning prompts vs one prompt at a time, equal seeds and images."""
    import torch

    from memaudit.policy.model import Policy
    from memaudit.scan.context import ScanContext, prompt_groups
    from memaudit.scan.progress import SilentProgress
    from memaudit.tiny.pipeline import build_tiny_pipeline

    policy = Policy.model_validate(
        {
            "name": "g",
            "sampling": {"num_inference_steps": 10, "batch_size": 8},
            "rules": {"r": {"metric": "extraction.extracted_count", "at_most": 0}},
        }
    )
    with tempfile.TemporaryDirectory() as scratch:
        rows = write_images(Path(scratch), prompts, side=16, seed=4, prefix="g")
        from memaudit.data import ImageCaptionDataset

        data = ImageCaptionDataset(write_manifest(Path(scratch), rows))
        context = ScanContext(
            policy=policy,
            train=data,
            holdout=data,
            progress=SilentProgress(),
            pipeline=build_tiny_pipeline(),
            image_side=16,
        )
        groups = prompt_groups(data)
        started = time.perf_counter()
        alone = [context.generate([g], per_group=per_prompt, stream="x", label="") for g in groups]
        one_at_a_time = time.perf_counter() - started
        started = time.perf_counter()
        batched = [images for _, images in context.generate_groups(groups, per_group=per_prompt, stream="x", label="")]
        spanning = time.perf_counter() - started
    same = all(torch.allclose(a, b, atol=1e-5) for a, b in zip(alone, batched, strict=True))
    print(
        f"generation, {prompts} prompts x {per_prompt} (batch 8): one prompt at a time {prompts / one_at_a_time:.2f} "
        f"prompts/s, batches spanning prompts {prompts / spanning:.2f} prompts/s "
        f"(x{one_at_a_time / spanning:.2f}); same images: {same}"
    )
    return {"one_at_a_time": prompts / one_at_a_time, "spanning": prompts / spanning, "same_images": same}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500,1000,2000,4000")
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        figures = scans(sizes, side=args.side, work=Path(scratch))
    growth = figures[-1]["peak_rss"] / figures[0]["peak_rss"]
    print(f"peak RSS {sizes[-1]} vs {sizes[0]} training images: x{growth:.2f} (goal < 1.2)")
    result = {"side": args.side, "scans": figures, "rss_growth": growth, "generation": generation()}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
