"""Distance and specificity together (`checks.extraction.criterion: combined`, DESIGN 3.6) on the extraction
candidates `bench/criterion_recall.py` measured: how many more planted studies does it count?

    .venv/bin/python bench/combined_recall.py [--recall bench/results/criterion-recall.json] \
        [--out bench/results/combined-recall.json]

criterion-recall.json keeps, per model, every attacked prompt's candidate as the scan's code found it
(its tiled L2 to the nearest training image, the distance ratio, whether the prompt is planted and
whether the nearest image is its own study). No model is needed to judge them again: the thresholds
are holdout-to-training distances, recomputed here from the data alone (the bench's 100 holdout
studies, or the row's fresh `@holdoutN` ones). Each row is judged with the bench policy's criterion as
it is (`separate`: it must give the stored verdicts back, a check that the candidates and the holdout
are the ones measured) and with `criterion: combined`. The fine-tunes need not be at hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from criterion_recall import holdout_of  # this folder is on sys.path when a bench script runs

import memaudit  # noqa: F401  (runtime guards)
from memaudit.data import ImageCaptionDataset
from memaudit.policy import Policy
from memaudit.results.scan_result import AttackedPrompt
from memaudit.scan.context import ScanContext
from memaudit.scan.extraction_thresholds import extraction_thresholds
from memaudit.scan.progress import SilentProgress
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model

HERE = Path(__file__).resolve().parent


def thresholds_for(train, holdout, *, criterion: str, image_side: int):
    content = yaml.safe_load((HERE / "ground_truth_policy.yaml").read_text())
    content["checks"]["extraction"]["criterion"] = criterion
    context = ScanContext(
        policy=Policy.model_validate(content), train=train, holdout=holdout, progress=SilentProgress(),
        pipeline=None, image_side=image_side,
    )  # fmt: skip
    return extraction_thresholds(context)


def judged(thresholds, prompts: list[dict]) -> list[AttackedPrompt]:
    candidates = [
        AttackedPrompt(
            item_ids=[f"prompt-{i}"], reason="all", clique_size=p["clique"], nearest_train_id=None,
            distance=p["distance"], distance_ratio=p["distance_ratio"],
            extracted=p["distance"] is not None and thresholds.candidate(p["distance"], p["distance_ratio"]),
        )
        for i, p in enumerate(prompts)
    ]  # fmt: skip
    return thresholds.judge(candidates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recall", type=Path, default=HERE / "results" / "criterion-recall.json")
    parser.add_argument("--models", type=Path, default=DEMO_MODELS_DIR, help="Whose hospital data to regenerate.")
    parser.add_argument("--data", type=Path, default=Path("build/criterion-recall"), help="Where data is regenerated.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "combined-recall.json")
    args = parser.parse_args()
    data = data_for_model(args.models / "hospital", args.data)
    train = ImageCaptionDataset(data.train)
    rows = json.loads(args.recall.read_text())
    figures = {}
    print("| model | holdout | criterion | threshold(s) | planted: own study extracted | generic extracted |")
    print("|---|---:|---|---|---:|---:|")
    for name, row in rows.items():
        size = int(name.split("@holdout")[1]) if "@holdout" in name else None
        holdout = ImageCaptionDataset(holdout_of(data, size, args.data))  # the holdout criterion_recall.py used
        prompts = row["prompts"]
        figures[name] = {}
        for criterion in ("separate", "combined"):
            thresholds = thresholds_for(train, holdout, criterion=criterion, image_side=data.recipe.image_size)
            verdicts = judged(thresholds, prompts)
            if criterion == "separate":  # the stored verdicts must come back: same candidates, same holdout
                stored = [p["extracted"] for p in prompts]
                if [v.extracted for v in verdicts] != stored:
                    raise SystemExit(f"{name}: the separate criterion does not give the stored verdicts back")
            own = sum(p["planted"] and p["own_study"] and v.extracted for p, v in zip(prompts, verdicts, strict=True))
            generic = sum(not p["planted"] and v.extracted for p, v in zip(prompts, verdicts, strict=True))
            shown = (
                f"{thresholds.combined.threshold:.4f} (distance x ratio)" if thresholds.combined
                else f"{thresholds.verify.threshold:.4f} / ratio {thresholds.ratio.threshold:.3f}"
            )  # fmt: skip
            figures[name][criterion] = {"planted_extracted_own": own, "planted": row["planted"], "threshold": shown,
                                        "generic_extracted": generic, "generic": row["generic"]}  # fmt: skip
            print(f"| {name} | {len(holdout)} | {criterion} | {shown} | {own}/{row['planted']} | "
                  f"{generic}/{row['generic']} |", flush=True)  # fmt: skip
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures in {args.out}")


if __name__ == "__main__":
    main()
