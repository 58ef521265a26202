"""How fast a base model's denoiser fits a few studies: the first thing a memorizer must do.

    .venv/bin/python bench/fit_speed.py [--model unet=models/demo/base --model dit=models/dit-demo/base] \
        [--steps 300] [--learning-rate 2e-4] [--out bench/results/fit-speed.json]

Each base is fully fine-tuned on 12 phantom studies alone (batch 12, so every step sees each study once),
then the loss attack (the scan's own, `checks.membership.attack: loss`) scores those 12 and 12 fresh
studies in the same style: the AUC of trained over fresh says how far the denoiser has fitted its
training images (0.5: not at all, 1: every one). The base, before fine-tuning, is the baseline of the
same run (near 0.5). Written for the transformer twin of the demo models, which memorizes no planted
study where the UNet memorizes all (docs/limits.md).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint
from memaudit.data import ImageCaptionDataset
from memaudit.finetune.config import TrainConfig
from memaudit.finetune.run import finetune
from memaudit.metrics.roc import roc_auc
from memaudit.phantoms.cohort import write_cohort
from memaudit.policy.checks import MembershipCheck
from memaudit.sampling.encode import encode_latents
from memaudit.sampling.text import encode_prompts
from memaudit.scan.membership_check import attack_scores

STUDIES = 12
SIDE = 32  # the demo models' image side


def _loss_scores(pipeline, data: Path) -> list[float]:
    dataset = ImageCaptionDataset(data)
    rows = list(range(len(dataset)))
    latents = encode_latents(pipeline, dataset, image_size=SIDE, rows=rows, batch_size=64)
    embeddings = encode_prompts(pipeline, [dataset.records[row].text for row in rows])
    settings = MembershipCheck(attack="loss")
    return attack_scores(pipeline, latents, embeddings, settings=settings, seeds=rows, batch_size=64).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="NAME=PATH of a base (repeatable).")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fit-speed.json")
    args = parser.parse_args()
    models = dict(item.split("=", 1) for item in args.model or ["unet=models/demo/base", "dit=models/dit-demo/base"])
    figures = {"studies": STUDIES, "steps": args.steps, "learning_rate": args.learning_rate, "models": {}}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        common = {"seed": 2, "size": SIDE, "indication_share": 1.0}
        trained = write_cohort(root / "trained", count=STUDIES, first_index=100_000, **common)
        fresh = write_cohort(root / "fresh", count=STUDIES, first_index=200_000, **common)
        for name, base in models.items():
            started = time.perf_counter()
            config = TrainConfig(
                method="full", mask="all", steps=args.steps, batch_size=STUDIES,
                learning_rate=args.learning_rate, seed=0, checkpoint_every=args.steps,
            )  # fmt: skip
            result = finetune(Path(base), trained, config, out=root / f"finetune-{name}")
            row = {"base": base, "seconds": round(time.perf_counter() - started, 1)}
            for label, model in (("base", Path(base)), ("fine-tuned", result.model_dir)):
                pipeline = load_checkpoint(model).pipeline  # once per model, for both sets
                members, others = _loss_scores(pipeline, trained), _loss_scores(pipeline, fresh)
                row[label] = {"auc": roc_auc(members, others), "loss_trained": -sum(members) / STUDIES,
                              "loss_fresh": -sum(others) / STUDIES}  # fmt: skip
            losses = result.log.losses
            row["training_loss"] = {"first": losses[0], "last_20_mean": sum(losses[-20:]) / len(losses[-20:])}
            figures["models"][name] = row
            print(f"{name:<6} base AUC {row['base']['auc']:.3f} -> fine-tuned {row['fine-tuned']['auc']:.3f} "
                  f"(loss trained {row['fine-tuned']['loss_trained']:.4f} vs fresh "
                  f"{row['fine-tuned']['loss_fresh']:.4f}; {row['seconds']:.0f} s)", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures in {args.out}")


if __name__ == "__main__":
    main()
