"""Triage detectors side by side on models whose memorized studies are known (DESIGN 3.7).

    .venv/bin/python bench/triage_detectors.py [--models models/demo] [--variants hospital,base] \
        [--finetunes bench/results] [--detectors wen,jeon] [--schedule 25] [--steps 1] \
        [--out bench/results/triage-detectors.json]

For each model and each registered detector at 1 and 4 generations (seed consistency needs 2 or
more), prints the AUC and TPR at 1% FPR of the planted captions against (a) the holdout captions
(never trained on; what a flag threshold is calibrated on) and (b) the generic training captions
(trained on once; what the attack budget competes with), the UNet passes per prompt-generation, and
prompts per second on this machine. `hospital` is the shipped full fine-tune and `base` the base
model (nothing memorized: AUCs near 0.5 are the right answer); other variants are the ground-truth
bench's fine-tunes (`<finetunes>/<variant>/finetune/model`), where present. ``--schedule`` is the triage
sampler's schedule length (a policy's `checks.noise_magnitude.num_inference_steps`; default the bench's
sampling, 25): every detector probes at its first timestep, and Wen averages the first ``--steps``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ground_truth import SAMPLING, latent_side  # the bench's sampling (this folder is on sys.path when run as a script)

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint
from memaudit.data import ImageCaptionDataset
from memaudit.metrics.roc import roc_auc, tpr_at_fpr
from memaudit.metrics.triage import DETECTORS
from memaudit.sampling.text import encode_prompts
from memaudit.sampling.triage import ASTHANA_COSINE_WEIGHT, triage_scores
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model

HERE = Path(__file__).resolve().parent


def settings_to_measure(detectors: list[str]) -> list[tuple[str, int]]:
    """(detector, generations): each at 1 and 4 seeds, consistency at 2 and 4."""
    return [(name, g) for name in detectors for g in ((2, 4) if DETECTORS[name].min_generations > 1 else (1, 4))]


def caption_sets(data, holdout: Path) -> dict[str, list[str]]:
    """The distinct planted captions, holdout captions (of the folder ``holdout``) and generic training
    captions, in this order wherever their scores are listed together."""
    planted = list(data.planted_captions)
    training = list(dict.fromkeys(ImageCaptionDataset(data.train).captions))
    return {
        "planted": planted,
        "holdout": list(dict.fromkeys(ImageCaptionDataset(holdout).captions)),
        "generic": [caption for caption in training if caption not in set(planted)],
    }


def model_path(variant: str, models: Path, finetunes: Path) -> Path:
    if variant in ("hospital", "base"):
        return models / variant
    return finetunes / variant / "finetune" / "model"


def measure(
    pipeline, captions: dict[str, list[str]], *, latent_size: int, detectors: list[str], schedule: int, steps: int
) -> list[dict]:
    """Every detector's rows on a triage schedule of ``schedule`` steps; Wen averages its first ``steps``."""
    every = captions["planted"] + captions["holdout"] + captions["generic"]
    embeddings, empty = encode_prompts(pipeline, every), encode_prompts(pipeline, [""])
    counts = len(captions["planted"]), len(captions["holdout"])
    sampling = SAMPLING | {"num_inference_steps": schedule}
    rows, computed = [], {}
    for detector, generations in settings_to_measure(detectors):
        probe_steps = steps if detector == "wen" else 1
        started = time.perf_counter()
        scores = triage_scores(
            pipeline, embeddings, empty, detector=detector, generations=generations, steps=probe_steps,
            latent_size=latent_size, seed=0, batch_size=64, **sampling,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        computed[detector, generations] = scores
        setting = {"schedule": schedule, "steps": probe_steps}
        rows.append(_row(detector, generations, scores, counts, len(every) / seconds, **setting))
    for generations in (1, 4) if {"asthana", "wen"} <= set(detectors) and steps == 1 else ():
        # Asthana's two terms apart: same latents, so the cosine term is the excess over Wen
        cosine = (computed["asthana", generations] - computed["wen", generations]) / ASTHANA_COSINE_WEIGHT
        rows.append(_row("asthana cosine term", generations, cosine, counts, None, schedule=schedule, steps=1))
    return rows


def _row(detector, generations, scores, counts, prompts_per_second, *, schedule: int, steps: int) -> dict:
    planted_count, holdout_count = counts
    planted = scores[:planted_count]
    holdout = scores[planted_count : planted_count + holdout_count]
    generic = scores[planted_count + holdout_count :]
    row = {
        "detector": detector,
        "generations": generations,
        "schedule": schedule,
        "steps": steps,
        "unet_passes": DETECTORS[detector].unet_passes(steps) if detector in DETECTORS else None,
        "auc_vs_holdout": roc_auc(planted, holdout),
        "tpr1_vs_holdout": tpr_at_fpr(planted, holdout, 0.01),
        "auc_vs_generic": roc_auc(planted, generic),
        "tpr1_vs_generic": tpr_at_fpr(planted, generic, 0.01),
        "prompts_per_second": prompts_per_second,
    }
    print(
        f"  {detector:<12} G{generations} schedule {schedule} steps {steps}  passes {row['unet_passes']}  "
        f"AUC/TPR@1% vs holdout {row['auc_vs_holdout']:.3f}/{row['tpr1_vs_holdout']:.3f}  "
        f"vs generic {row['auc_vs_generic']:.3f}/{row['tpr1_vs_generic']:.3f}  "
        + (f"{prompts_per_second:.1f} prompts/s" if prompts_per_second else "(derived)")
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=DEMO_MODELS_DIR, help="Folder with base/ and hospital/.")
    parser.add_argument("--variants", default="hospital,base")
    parser.add_argument("--finetunes", type=Path, default=HERE / "results")
    parser.add_argument("--detectors", default=",".join(DETECTORS), help="Registered detectors to measure.")
    parser.add_argument(
        "--schedule", type=int, default=SAMPLING["num_inference_steps"], help="Triage schedule length (steps)."
    )
    parser.add_argument("--steps", type=int, default=1, help="Steps Wen's score averages (the others use 1).")
    parser.add_argument("--data", type=Path, default=Path("build/triage-detectors"), help="Where data is regenerated.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "triage-detectors.json")
    args = parser.parse_args()
    detectors = args.detectors.split(",")
    unknown = [name for name in detectors if name not in DETECTORS]
    if unknown:
        parser.error(f"unknown detectors {unknown}; registered: {', '.join(DETECTORS)}")
    data = data_for_model(args.models / "hospital", args.data)
    captions = caption_sets(data, data.holdout)
    print({name: len(values) for name, values in captions.items()})
    figures = {"captions": {name: len(values) for name, values in captions.items()}, "models": {}}
    if args.out.is_file():  # models measured earlier stay; the ones measured now replace theirs
        figures["models"] = json.loads(args.out.read_text()).get("models", {})
    for variant in args.variants.split(","):
        path = model_path(variant, args.models, args.finetunes)
        if not path.is_dir():
            print(f"{variant}: no model at {path}, skipped")
            continue
        print(variant)
        pipeline = load_checkpoint(path).pipeline
        rows = measure(
            pipeline, captions, latent_size=latent_side(pipeline, data.recipe.image_size), detectors=detectors,
            schedule=args.schedule, steps=args.steps,
        )  # fmt: skip
        measured = {_setting(row) for row in rows}  # rows of settings not measured now stay
        kept = [row for row in figures["models"].get(variant, []) if _setting(row) not in measured]
        figures["models"][variant] = kept + rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures in {args.out}")


def _setting(row: dict) -> tuple:
    """What a row measured (rows from before the schedule option: the sampling's schedule, one step)."""
    return row["detector"], row.get("schedule", SAMPLING["num_inference_steps"]), row.get("steps", 1)


if __name__ == "__main__":
    main()
