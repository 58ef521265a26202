"""Why first-step noise magnitude separates planted from holdout captions poorly on phantom chest X-rays.

    .venv/bin/python bench/first_step.py [--models models/demo] [--out build/first-step]

At the first denoising step the latent is pure noise, so the text-conditional noise difference is the
scheduler's signal coefficient times the gap between the image the model predicts for the caption and
the one it predicts without it. For a memorized study that gap is the study's distance from the
population's mean image. Chest X-rays (real or phantom) all look alike, so a memorized normal study sits
close to the mean and scores low at step 1; later steps let the trajectories diverge and add evidence.
This script prints, for each planted study of the hospital model, that distance (its VAE latent's L2
distance from the mean latent of the training set) next to its score at 1..10 steps, the Pearson
correlation of the two per step, and the planted-vs-holdout AUC per step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from ground_truth import SAMPLING, latent_side  # the bench's sampling (this folder is on sys.path when run as a script)

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint
from memaudit.data import ImageCaptionDataset
from memaudit.metrics.roc import roc_auc
from memaudit.sampling.encode import encode_latents
from memaudit.sampling.probe import noise_magnitude_scores
from memaudit.sampling.text import encode_prompts
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model

STEPS = (1, 2, 3, 5, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=DEMO_MODELS_DIR, help="Folder with hospital/.")
    parser.add_argument("--out", type=Path, default=Path("build/first-step"), help="Where the data is regenerated.")
    args = parser.parse_args()
    data = data_for_model(args.models / "hospital", args.out / "data")
    pipeline = load_checkpoint(args.models / "hospital").pipeline
    train = ImageCaptionDataset(data.train)
    latents = encode_latents(pipeline, train, image_size=data.recipe.image_size)
    mean = latents.mean(dim=0)
    planted_ids = set(data.planted_ids)
    own_row = {record.text: row for row, record in enumerate(train.records) if record.id in planted_ids}
    planted = list(data.planted_captions)
    holdout = list(dict.fromkeys(ImageCaptionDataset(data.holdout).captions))
    distance = (latents[[own_row[text] for text in planted]] - mean).flatten(1).norm(dim=1).double()
    typical = (latents - mean).flatten(1).norm(dim=1).quantile(torch.tensor([0.1, 0.5, 0.9]))

    embeddings = encode_prompts(pipeline, planted + holdout)
    empty = encode_prompts(pipeline, [""])
    scores = {}
    for steps in STEPS:
        scores[steps] = noise_magnitude_scores(
            pipeline, embeddings, empty, generations=4, steps=steps,
            latent_size=latent_side(pipeline, data.recipe.image_size), seed=0, batch_size=64, **SAMPLING,
        )  # fmt: skip

    print(f"training latents' distance from their mean: 10%/50%/90% = {typical.numpy().round(2).tolist()}")
    print("planted study (caption's findings)                 distance  " + "  ".join(f"S{s:<5}" for s in STEPS))
    for index in distance.argsort().tolist():
        findings = planted[index].split(". ", 2)[-1][:50]
        row = "  ".join(f"{scores[s][index].item():.3f} " for s in STEPS)
        print(f"{findings:<52} {distance[index].item():8.2f}  {row}")
    for steps in STEPS:
        members, others = scores[steps][: len(planted)], scores[steps][len(planted) :]
        correlation = torch.corrcoef(torch.stack([distance, members]))[0, 1].item()
        print(
            f"S{steps} G4: corr(score, distance from mean) = {correlation:.3f}; "
            f"AUC planted vs {len(holdout)} holdout = {roc_auc(members, others):.3f}"
        )


if __name__ == "__main__":
    main()
