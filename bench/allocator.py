"""Does keeping large blocks in the heap (``memaudit.runtime.allocator``) speed up CPU work? One run,
each measurement in a fresh process, with glibc's own thresholds (``MEMAUDIT_MALLOC=default``) as the
baseline, alternating so that a change in the machine's speed hits both alike.

    .venv/bin/python bench/allocator.py [--repeats 2] [--images 64]

Prints seconds for generating ``--images`` images (25 DDIM steps, guidance 3, one batch) with the
shipped demo hospital model, and for decoding 300 smooth random 512 px PNGs, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, sys, time, torch
import memaudit
from memaudit.runtime import allocator
kind, argument = sys.argv[1], sys.argv[2]
if kind == "generate":
    from memaudit.sampling.generate import generate_images
    from memaudit.sampling.text import encode_prompts
    from memaudit.tiny.assets import DEMO_MODELS_DIR
    from memaudit.checkpoint import load_checkpoint
    pipeline = load_checkpoint(DEMO_MODELS_DIR / "hospital").pipeline
    count = int(argument)
    embeddings, empty = encode_prompts(pipeline, ["small left effusion"] * count), encode_prompts(pipeline, [""])
    settings = dict(num_inference_steps=25, guidance_scale=3.0, latent_size=int(pipeline.unet.config.sample_size))
    warm = min(8, count)
    generate_images(pipeline, embeddings[:warm], empty, seeds=list(range(warm)), batch_size=warm, **settings)
    started = time.perf_counter()
    generate_images(pipeline, embeddings, empty, seeds=list(range(count)), batch_size=count, **settings)
else:
    from memaudit.data import ImageCaptionDataset
    dataset = ImageCaptionDataset(argument)
    dataset.load_image(0)
    started = time.perf_counter()
    for row in range(len(dataset)):
        dataset.load_image(row)
print(json.dumps({"tuned": allocator.tuned, "seconds": time.perf_counter() - started}))
"""


def measure(kind: str, argument: str, *, tuned: bool) -> float:
    env = dict(os.environ) | ({} if tuned else {"MEMAUDIT_MALLOC": "default"})
    done = subprocess.run([sys.executable, "-c", CHILD, kind, argument], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(done.stderr)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["tuned"] == tuned, figures
    return figures["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from scale import write_images, write_manifest  # the scale bench's smooth random images

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "images"
        write_manifest(folder, write_images(folder, 300, side=512, seed=1, prefix="d"))
        for kind, argument, label in (
            ("generate", str(args.images), f"generate {args.images} images, 25 steps"),
            ("decode", str(folder), "decode 300 PNGs at 512 px"),
        ):
            times = {True: [], False: []}
            for _ in range(args.repeats):
                for tuned in (False, True):
                    times[tuned].append(measure(kind, argument, tuned=tuned))
            plain, heap = statistics.median(times[False]), statistics.median(times[True])
            print(f"{label}: glibc's thresholds {plain:.2f} s, heap {heap:.2f} s ({plain / heap:.2f}x)", flush=True)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s in all)")
