"""Membership inference attacks on models whose training set is known (DESIGN 3.8).

    .venv/bin/python bench/membership.py [--models models/demo] [--extra NAME=PATH ...] \
        [--attacks pia,loss,secmi] [--timestep 200] [--p 4] [--draws 4] [--interval 10] \
        [--generic N] [--out bench/results/membership.json]

Scores every distinct training study of the hospital data (planted studies, each seen 50 times in
training, and generic ones, seen a few times) and every holdout study with its own caption, on the
shipped hospital model, the base model (never saw the data: AUC near 0.5 is the right answer) and any
extra model given (e.g. a remediated one), by each attack the policy can name
(`checks.membership.attack`, scored by the scan's own function with the settings given here). Prints
AUC and TPR at 1% FPR of planted vs holdout and of generic vs holdout, how many studies of each kind
the scan's family test (Benjamini-Hochberg at 1% on holdout p-values) singles out as members, and the
seconds taken; for every model but the base, both uncalibrated (the attack's distance) and calibrated
against the base (the distance over the base's, as `checks.membership.reference: base` scores). The
base row is uncalibrated (against itself every ratio is 1); its AUC's 95% interval (Hanley-McNeil)
says what chance looks like at these sizes. `--generic N` scores a seeded sample of N generic
studies instead of all (planted and holdout studies are always all scored); `--holdout N` scores N
holdout studies (the data's own first, then fresh ones). `--textures DIR` scores the second domain
instead (colour textures, memaudit/tiny/textures.py: a base and its fine-tune with 8 studies repeated
25 times, trained into DIR first, ~6 minutes on a CPU core).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint
from memaudit.data import ImageCaptionDataset
from memaudit.metrics.membership import reference_ratios
from memaudit.metrics.roc import roc_auc, tpr_at_fpr
from memaudit.metrics.tail import benjamini_hochberg, fit_lower_tail
from memaudit.policy.checks import MembershipCheck
from memaudit.sampling.encode import encode_latents
from memaudit.sampling.seeds import sample_seed
from memaudit.sampling.text import encode_prompts
from memaudit.scan.membership_check import attack_scores
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model, write_holdout
from memaudit.tiny.textures import train_pair

HERE = Path(__file__).resolve().parent


def scores(pipeline, dataset: ImageCaptionDataset, rows: list[int], *, image_size: int, settings: MembershipCheck):
    """The attack's scores of ``rows`` (higher for likelier members), seeded as the scan seeds them."""
    latents = encode_latents(pipeline, dataset, image_size=image_size, rows=rows, batch_size=64)
    embeddings = encode_prompts(pipeline, [dataset.records[row].text for row in rows])
    seeds = [sample_seed(0, "membership-loss", row) for row in rows]
    return attack_scores(pipeline, latents, embeddings, settings=settings, seeds=seeds, batch_size=64)


def _auc_interval(auc: float, positives: int, negatives: int) -> tuple[float, float]:
    """Hanley and McNeil's (1982) normal 95% interval of an AUC from its sample sizes."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )
    half = 1.96 * max(variance, 0.0) ** 0.5
    return max(0.0, auc - half), min(1.0, auc + half)


def _row(member, unseen, *, planted: list[int], generic: list[int]) -> dict:
    """Figures of one way of scoring: scores are higher for likelier members (minus a distance or ratio)."""
    tail = fit_lower_tail(-unseen, confidence=0.95)
    identified = benjamini_hochberg([tail.p_value(float(-score)) for score in member], 0.01)
    auc = roc_auc(member[planted], unseen)
    low, high = _auc_interval(auc, len(planted), len(unseen))
    return {
        "identified_planted": sum(identified[i] for i in planted),
        "identified_generic": sum(identified[i] for i in generic),
        "auc_planted": auc,
        "auc_planted_low": low,
        "auc_planted_high": high,
        "tpr1_planted": tpr_at_fpr(member[planted], unseen, 0.01),
        "auc_generic": roc_auc(member[generic], unseen),
        "tpr1_generic": tpr_at_fpr(member[generic], unseen, 0.01),
    }


def _generic_sample(generic: list[int], count: int | None) -> list[int]:
    if count is None or count >= len(generic):
        return generic
    chosen = torch.randperm(len(generic), generator=torch.Generator().manual_seed(0))[:count]
    return sorted(generic[i] for i in chosen.tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=DEMO_MODELS_DIR, help="Folder with base/ and hospital/.")
    parser.add_argument("--extra", action="append", default=[], help="NAME=PATH of another model to score.")
    parser.add_argument("--attacks", default="pia", help="Comma-separated: pia, loss, secmi.")
    parser.add_argument("--timestep", type=int, default=200)
    parser.add_argument("--p", type=float, default=4.0, help="pia: the L_p distance")
    parser.add_argument("--draws", type=int, default=4, help="loss: noise draws per study")
    parser.add_argument("--interval", type=int, default=10, help="secmi: the inversion's step")
    parser.add_argument("--generic", type=int, default=None, help="Score a seeded sample of this many generic studies.")
    parser.add_argument("--data", type=Path, default=Path("build/membership"), help="Where data is regenerated.")
    parser.add_argument(
        "--textures", type=Path, default=None, help="Score the texture pair in this folder (trained there first)."
    )
    parser.add_argument("--holdout", type=int, default=None, help="Holdout studies (default: the data's own).")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "membership.json")
    args = parser.parse_args()
    attacks = {
        name: MembershipCheck(
            attack=name, timestep=args.timestep, p=args.p, draws=args.draws, interval=args.interval, reference="none"
        )
        for name in args.attacks.split(",")
    }  # the policy's own validation: an unknown attack or a bad interval fails here, before model work
    if args.textures is not None:  # the second domain: colour textures (memaudit/tiny/textures.py)
        pair = train_pair(args.textures, holdout=args.holdout or 60)
        train_path, holdout_path, planted_ids, image_size = pair.train, pair.holdout, set(pair.planted), 16
        models = {"hospital": pair.model, "base": pair.base}
    else:
        data = data_for_model(args.models / "hospital", args.data)
        train_path, holdout_path, planted_ids = data.train, data.holdout, set(data.planted_ids)
        if args.holdout is not None and args.holdout != data.recipe.holdout:  # the recipe's, then fresh studies
            holdout_path = write_holdout(data.recipe, args.data / f"holdout-{args.holdout}", count=args.holdout)
        image_size = data.recipe.image_size
        models = {"hospital": args.models / "hospital", "base": args.models / "base"}
    train, holdout = ImageCaptionDataset(train_path), ImageCaptionDataset(holdout_path)
    all_rows, holdout_rows = train.first_rows("item"), holdout.first_rows("item")
    planted_rows = [row for row in all_rows if train.records[row].id in planted_ids]
    generic_rows = _generic_sample([row for row in all_rows if train.records[row].id not in planted_ids], args.generic)
    train_rows = planted_rows + generic_rows
    planted, generic = list(range(len(planted_rows))), list(range(len(planted_rows), len(train_rows)))
    models |= dict(item.split("=", 1) for item in args.extra)
    figures = {"timestep": args.timestep, "p": args.p, "draws": args.draws, "interval": args.interval}
    figures |= {"planted": len(planted), "generic": len(generic), "holdout": len(holdout_rows), "models": {}}
    pipelines = {name: load_checkpoint(Path(path)).pipeline for name, path in models.items()}
    for attack, settings in attacks.items():
        distances = {}
        for name in ("base", *[name for name in pipelines if name != "base"]):
            started = time.perf_counter()
            common = dict(image_size=image_size, settings=settings)
            sides = ((train, train_rows), (holdout, holdout_rows))
            distances[name] = tuple(-scores(pipelines[name], dataset, rows, **common) for dataset, rows in sides)
            seconds = round(time.perf_counter() - started, 1)
            ways = {"uncalibrated": distances[name]}
            if name != "base":
                pairs = zip(distances[name], distances["base"], strict=True)
                ways["calibrated"] = tuple(reference_ratios(mine, base) for mine, base in pairs)
            for way, (member, unseen) in ways.items():
                row = _row(-member, -unseen, planted=planted, generic=generic) | {"seconds": seconds}
                figures["models"][f"{attack} {name} {way}"] = row
                print(
                    f"{attack:<6} {name:<10} {way:<12} planted vs holdout AUC {row['auc_planted']:.3f} "
                    f"[{row['auc_planted_low']:.3f}, {row['auc_planted_high']:.3f}] TPR@1%FPR "
                    f"{row['tpr1_planted']:.3f}  generic AUC {row['auc_generic']:.3f} TPR@1%FPR "
                    f"{row['tpr1_generic']:.3f}  identified {row['identified_planted']}/{len(planted)} planted, "
                    f"{row['identified_generic']}/{len(generic)} generic ({seconds} s)",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures in {args.out}")


if __name__ == "__main__":
    main()
