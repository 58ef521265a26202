"""Does the scan's extraction criterion keep the copies a memorizing model makes? (issue target: recall of
at least 0.9 of what the bench's own attack extracts, on the full fine-tuning rows.)

    .venv/bin/python bench/criterion_recall.py [--models models/demo] [--variants hospital,base] \
        [--model NAME=PATH ...] [--generic 24] [--holdout N] [--out bench/results/criterion-recall.json]

A scan attacks only what triage sends it (bench/triage_recall.py measures that part); this measures the
rest: if the scan attacked every planted caption, would its criterion (the order-statistic verify
threshold, the specificity ratio, the family test; bench/ground_truth_policy.yaml) count each one's own
study as extracted? It runs the scan's own code (`extraction_thresholds`, the scan's generation stream,
`attack_candidate`, `Thresholds.judge`) on the 12 planted captions together with ``--generic`` generic
training captions drawn at random (seeded): one family, as in a scan whose attack set mixes
memorized and ordinary prompts. Generic captions whose candidate counts as extracted are listed too.

``--holdout N`` calibrates on N fresh holdout studies instead of the bench's 100 (the same generator, the
first 100 identical): how the recall depends on the holdout's size, which sets both the order statistic
the verify threshold is and the resolution of the count test. Results go under ``<name>@holdout<N>``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import yaml

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint, summarize
from memaudit.data import ImageCaptionDataset
from memaudit.policy import Policy
from memaudit.scan.context import ScanContext
from memaudit.scan.extraction_check import attack_candidate
from memaudit.scan.extraction_thresholds import extraction_thresholds
from memaudit.scan.progress import SilentProgress
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model, write_holdout

HERE = Path(__file__).resolve().parent
POLICY = HERE / "ground_truth_policy.yaml"


def measure(checkpoint, train, holdout, data, *, generic: int, seed: int = 0) -> dict:
    policy = Policy.model_validate(yaml.safe_load(POLICY.read_text()))
    context = ScanContext(
        policy=policy,
        train=train,
        holdout=holdout,
        progress=SilentProgress(),
        pipeline=checkpoint.pipeline,
        image_side=summarize(checkpoint).image_size,
    )
    started = time.perf_counter()
    planted_ids = set(data.planted_ids)
    groups = context.train_groups
    is_planted = {g.index: bool(planted_ids & set(context.ids(g.rows))) for g in groups}
    planted = [g for g in groups if is_planted[g.index]]
    ordinary = [g for g in groups if not is_planted[g.index]]
    attacked = sorted(planted + random.Random(seed).sample(ordinary, generic), key=lambda g: g.index)
    thresholds = extraction_thresholds(context)
    records = []
    generated = context.generate_groups(
        attacked, per_group=policy.checks.extraction.generations, stream="extraction", label="attack"
    )
    for group, images in generated:
        record, _, _ = attack_candidate(
            context, images, thresholds=thresholds, item_ids=context.ids(group.rows), reason="all"
        )
        records.append(record)
    judged = thresholds.judge(records)
    rows = []
    for group, record in zip(attacked, judged, strict=True):
        own = set(context.ids(group.rows))
        rows.append(
            {
                "planted": is_planted[group.index],
                "clique": record.clique_size,
                "distance": record.distance,
                "distance_ratio": record.distance_ratio,
                "p_value": record.p_value,
                "extracted": record.extracted,
                "own_study": record.nearest_train_id in own,
                "nearest_planted": record.nearest_train_id in planted_ids,
            }
        )
    return {
        "policy": policy.name,
        "generations": policy.checks.extraction.generations,
        "verify_threshold": thresholds.verify.threshold,
        "ratio_threshold": thresholds.ratio.threshold if thresholds.ratio else None,
        "planted": len(planted),
        "planted_extracted_own": sum(r["planted"] and r["extracted"] and r["own_study"] for r in rows),
        "planted_candidates_own": sum(r["planted"] and r["own_study"] and r["distance"] is not None for r in rows),
        "generic": generic,
        "generic_extracted": sum(not r["planted"] and r["extracted"] for r in rows),
        "seconds": time.perf_counter() - started,
        "prompts": rows,
    }


def holdout_of(data, size: int | None, folder: Path) -> Path:
    """The bench's holdout, or ``size`` fresh studies drawn as it is (its first ones are the bench's)."""
    if size is None:
        return data.holdout
    out = folder / f"holdout-{size}"
    if not (out / "metadata.jsonl").is_file():
        write_holdout(data.recipe, out, count=size)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=DEMO_MODELS_DIR, help="Folder with base/ and hospital/.")
    parser.add_argument("--variants", default="hospital,base")
    parser.add_argument("--model", action="append", default=[], help="NAME=PATH of another model at hand.")
    parser.add_argument("--generic", type=int, default=24, help="Generic training captions attacked beside.")
    parser.add_argument("--holdout", type=int, default=None, help="Fresh holdout studies (default: the bench's).")
    parser.add_argument("--data", type=Path, default=Path("build/criterion-recall"), help="Where data is regenerated.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "criterion-recall.json")
    args = parser.parse_args()
    data = data_for_model(args.models / "hospital", args.data)  # every model is judged on the same captions
    train, holdout = ImageCaptionDataset(data.train), ImageCaptionDataset(holdout_of(data, args.holdout, args.data))
    models = {variant: args.models / variant for variant in args.variants.split(",") if variant}
    models |= dict(item.split("=", 1) for item in args.model)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    print("| model | planted: own study extracted | planted: own study the candidate | generic extracted | s |")
    print("|---|---:|---:|---:|---:|")
    for name, path in models.items():
        row = measure(load_checkpoint(Path(path)), train, holdout, data, generic=args.generic)
        results[name if args.holdout is None else f"{name}@holdout{args.holdout}"] = row
        print(
            f"| {name} | {row['planted_extracted_own']}/{row['planted']} | {row['planted_candidates_own']}/"
            f"{row['planted']} | {row['generic_extracted']}/{row['generic']} | {row['seconds']:.0f} |",
            flush=True,
        )
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
