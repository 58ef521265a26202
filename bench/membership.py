"""Membership inference (PIA) on models whose training set is known (DESIGN 3.8).

    .venv/bin/python bench/membership.py [--models models/demo] [--extra NAME=PATH ...] \
        [--timestep 200] [--p 4] [--out bench/results/membership.json]

Scores every distinct training study of the hospital data (planted studies, each seen 50 times in
training, and generic ones, seen a few times) and every holdout study with its own caption, on the
shipped hospital model, the base model (never saw the data: AUC near 0.5 is the right answer) and any
extra model given (e.g. a remediated one). Prints AUC and TPR at 1% FPR of planted vs holdout and of
generic vs holdout, how many studies of each kind the scan's family test (Benjamini-Hochberg at 1% on
holdout p-values) singles out as members, and the seconds taken.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint
from memaudit.data import ImageCaptionDataset
from memaudit.metrics.roc import roc_auc, tpr_at_fpr
from memaudit.metrics.tail import benjamini_hochberg, fit_lower_tail
from memaudit.sampling.encode import encode_latents
from memaudit.sampling.membership import membership_scores
from memaudit.sampling.text import encode_prompts
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model

HERE = Path(__file__).resolve().parent


def scores(pipeline, dataset: ImageCaptionDataset, rows: list[int], *, image_size: int, timestep: int, p: float):
    latents = encode_latents(pipeline, dataset, image_size=image_size, rows=rows, batch_size=64)
    embeddings = encode_prompts(pipeline, [dataset.records[row].text for row in rows])
    return membership_scores(pipeline, latents, embeddings, timestep=timestep, p=p, batch_size=64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=DEMO_MODELS_DIR, help="Folder with base/ and hospital/.")
    parser.add_argument("--extra", action="append", default=[], help="NAME=PATH of another model to score.")
    parser.add_argument("--timestep", type=int, default=200)
    parser.add_argument("--p", type=float, default=4.0)
    parser.add_argument("--data", type=Path, default=Path("build/membership"), help="Where data is regenerated.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "membership.json")
    args = parser.parse_args()
    data = data_for_model(args.models / "hospital", args.data)
    train, holdout = ImageCaptionDataset(data.train), ImageCaptionDataset(data.holdout)
    train_rows, holdout_rows = train.first_rows("item"), holdout.first_rows("item")
    planted_ids = set(data.planted_ids)
    planted = [i for i, row in enumerate(train_rows) if train.records[row].id in planted_ids]
    generic = [i for i, row in enumerate(train_rows) if train.records[row].id not in planted_ids]
    models = {"hospital": args.models / "hospital", "base": args.models / "base"}
    models |= dict(item.split("=", 1) for item in args.extra)
    figures = {"timestep": args.timestep, "p": args.p, "planted": len(planted), "generic": len(generic),
               "holdout": len(holdout_rows), "models": {}}  # fmt: skip
    for name, path in models.items():
        started = time.perf_counter()
        pipeline = load_checkpoint(Path(path)).pipeline
        common = dict(image_size=data.recipe.image_size, timestep=args.timestep, p=args.p)
        member = scores(pipeline, train, train_rows, **common)
        unseen = scores(pipeline, holdout, holdout_rows, **common)
        tail = fit_lower_tail(-unseen, confidence=0.95)
        identified = benjamini_hochberg([tail.p_value(float(-score)) for score in member], 0.01)
        row = {
            "identified_planted": sum(identified[i] for i in planted),
            "identified_generic": sum(identified[i] for i in generic),
            "auc_planted": roc_auc(member[planted], unseen),
            "tpr1_planted": tpr_at_fpr(member[planted], unseen, 0.01),
            "auc_generic": roc_auc(member[generic], unseen),
            "tpr1_generic": tpr_at_fpr(member[generic], unseen, 0.01),
            "seconds": round(time.perf_counter() - started, 1),
        }
        figures["models"][name] = row
        print(
            f"{name:<12} planted vs holdout AUC {row['auc_planted']:.3f} TPR@1%FPR {row['tpr1_planted']:.3f}  "
            f"generic vs holdout AUC {row['auc_generic']:.3f} TPR@1%FPR {row['tpr1_generic']:.3f}  identified "
            f"{row['identified_planted']}/{len(planted)} planted, {row['identified_generic']}/{len(generic)} generic "
            f"({row['seconds']} s)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures in {args.out}")


if __name__ == "__main__":
    main()
