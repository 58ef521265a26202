"""Does a combination of triage detectors, fitted on holdout captions alone, rank memorized captions
better than Wen's score alone? (DESIGN 3.7; issue on triage detectors, item 1.)

    .venv/bin/python bench/triage_combination.py [--models models/demo] [--variants hospital,base] \
        [--holdout 300] [--splits 20] [--out bench/results/triage-combination.json]

Wen's noise magnitude and seed consistency read the same UNet outputs (the text-conditional noise
differences of G seeds at the first step of a 2-step triage schedule), so combining them costs no
UNet pass. Nothing labelled is used to fit: each split fits on a random half of the holdout captions
(never trained on) and is judged on the other half, so the planted captions and the evaluated holdout
captions never shape the fit. Combinations:
- ``zsum``: the two scores standardised by the fitting half's mean and deviation, summed;
- ``fisher``: -log of each score's conformal p-value against the fitting half, summed (Fisher);
- ``minp``: the smaller of the two p-values (a Bonferroni-style union).
Printed per model and seed count: AUC and TPR@1%FPR of planted vs the evaluated holdout half, AUC vs
the generic training captions, and the rank of the last planted caption among planted and generic
ones (what a ranked attack budget must reach), each the mean over the splits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from criterion_recall import holdout_of  # this folder is on sys.path when run as a script
from ground_truth import SAMPLING, latent_side
from triage_detectors import caption_sets, model_path

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint
from memaudit.metrics.roc import roc_auc, tpr_at_fpr
from memaudit.sampling.text import encode_prompts
from memaudit.sampling.triage import triage_scores
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model

HERE = Path(__file__).resolve().parent
SCHEDULE = 2  # the shipped ci policy's triage schedule: one probe at t = 501
PAIR = ("wen", "consistency")  # read the same UNet outputs: combining them costs no pass
COMBINATIONS = (*PAIR, "zsum", "fisher", "minp")


def upper_p_values(reference: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Conformal p-values: (1 + reference scores at or above each value) / (1 + reference size)."""
    above = (reference.unsqueeze(0) >= values.unsqueeze(1)).sum(dim=1)
    return (1 + above).double() / (1 + reference.numel())


def combine(kind: str, wen: torch.Tensor, consistency: torch.Tensor, fit: dict[str, torch.Tensor]) -> torch.Tensor:
    """Scores of ``kind`` (higher: more likely memorized), fitted on the holdout half in ``fit``."""
    if kind == "wen":
        return wen
    if kind == "consistency":
        return consistency
    if kind == "zsum":
        return sum((s - fit[name].mean()) / fit[name].std() for name, s in (("wen", wen), ("consistency", consistency)))
    p_wen, p_consistency = upper_p_values(fit["wen"], wen), upper_p_values(fit["consistency"], consistency)
    if kind == "fisher":
        return -(p_wen.log() + p_consistency.log())
    if kind == "minp":
        return -torch.minimum(p_wen, p_consistency)
    raise ValueError(f"unknown combination '{kind}'")


def cross_fitted(scores: dict[str, torch.Tensor], counts: tuple[int, int], *, splits: int) -> dict[str, dict]:
    """Each combination's figures, the mean over ``splits`` random halvings of the holdout captions.
    ``scores`` lists the planted captions, then the holdout ones, then the generic training ones."""
    planted, holdout = counts
    every = next(iter(scores.values())).numel()
    planted_rows, generic_rows = torch.arange(planted), torch.arange(planted + holdout, every)
    generator = torch.Generator().manual_seed(0)
    totals = {kind: torch.zeros(4, dtype=torch.float64) for kind in COMBINATIONS}
    for _ in range(splits):
        order = planted + torch.randperm(holdout, generator=generator)
        fit_rows, judged_rows = order[: holdout // 2], order[holdout // 2 :]
        fit = {name: values[fit_rows] for name, values in scores.items()}
        for kind in COMBINATIONS:
            combined = combine(kind, scores["wen"], scores["consistency"], fit)
            ours, judged, generic = combined[planted_rows], combined[judged_rows], combined[generic_rows]
            last_rank = planted + int((generic >= ours.min()).sum())  # among planted and generic captions
            figures = (roc_auc(ours, judged), tpr_at_fpr(ours, judged, 0.01), roc_auc(ours, generic), last_rank)
            totals[kind] += torch.tensor(figures, dtype=torch.float64)
    keys = ("auc_vs_holdout", "tpr1_vs_holdout", "auc_vs_generic", "last_planted_rank")
    return {kind: dict(zip(keys, (total / splits).tolist(), strict=True)) for kind, total in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=DEMO_MODELS_DIR, help="Folder with base/ and hospital/.")
    parser.add_argument("--variants", default="hospital,base")
    parser.add_argument("--finetunes", type=Path, default=HERE / "results")
    parser.add_argument("--generations", default="2,4", help="Seeds per caption to measure at.")
    parser.add_argument("--holdout", type=int, default=300, help="Fresh holdout studies (the bench's 100 first).")
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument(
        "--data", type=Path, default=Path("build/triage-combination"), help="Where data is regenerated."
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "triage-combination.json")
    args = parser.parse_args()
    data = data_for_model(args.models / "hospital", args.data)
    captions = caption_sets(data, holdout_of(data, args.holdout, args.data))
    planted, holdout, generic = captions["planted"], captions["holdout"], captions["generic"]
    results: dict[str, dict] = {"captions": {"planted": len(planted), "holdout": len(holdout), "generic": len(generic)}}
    print("| model | seeds | combination | AUC / TPR@1%FPR vs holdout half | AUC vs generic | last planted rank |")
    print("|---|---:|---|---|---:|---:|")
    for variant in args.variants.split(","):
        pipeline = load_checkpoint(model_path(variant, args.models, args.finetunes)).pipeline
        embeddings, empty = encode_prompts(pipeline, planted + holdout + generic), encode_prompts(pipeline, [""])
        for generations in (int(g) for g in args.generations.split(",")):
            side = latent_side(pipeline, data.recipe.image_size)
            triage = dict(generations=generations, steps=1, latent_size=side, seed=0)
            triage |= SAMPLING | {"num_inference_steps": SCHEDULE, "batch_size": 64}
            scores = {name: triage_scores(pipeline, embeddings, empty, detector=name, **triage) for name in PAIR}
            rows = cross_fitted(scores, (len(planted), len(holdout)), splits=args.splits)
            results.setdefault(variant, {})[f"G{generations}"] = rows
            for kind, row in rows.items():
                figures = f"{row['auc_vs_holdout']:.3f} / {row['tpr1_vs_holdout']:.3f} | {row['auc_vs_generic']:.3f}"
                ranked = f"{row['last_planted_rank']:.0f} of {len(planted) + len(generic)}"
                print(f"| {variant} | {generations} | {kind} | {figures} | {ranked} |", flush=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
