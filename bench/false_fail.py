"""How often a shipped policy fails an innocent release: synthetic data drawn independently from the
training distribution, never trained on, audited with `memaudit scan --images` (DESIGN 3.5).

    .venv/bin/python bench/false_fail.py [--releases 100] [--release-size 24] [--train 2000] [--holdout 300]
        [--policies ci,hospital-release] [--criterion separate|combined] [--reid-studies N]
        [--reid-hard-neighbours K] [--out bench/results/false-fail.json]

Training, holdout and every release are phantom chest X-rays (64 px) of distinct patients from the
same generator. Each release is audited with shipped policies (default `ci` and `hospital-release`;
`demo --holdout 100` tries the small-holdout case the family's count test is for), with one change:
the `pixels` extractor instead of xrv-densenet121, whose weights cannot be fetched here; `--criterion
combined` also judges distance and specificity together (`checks.extraction.criterion`).
`--reid-studies N` turns re-identification on: training patients get N studies each (phantom patients
with a shared anatomy, memaudit/phantoms/identity.py), the holdout 2 each, every release is one new
study of each of its unseen patients, and a verifier trained here on the training patients (early-stopped
on the holdout's) judges them with the policy's rule `reidentification.reidentified_patients` at most 0;
`--reid-hard-neighbours K` trains it with look-alike pairs (`memaudit reid train --hard-neighbours`).
Prints, per policy, the share of releases that fail and which rules failed them; a release of
unseen patients should fail at most 1% of the time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

import memaudit  # noqa: F401  (runtime guards)
from memaudit.data import ImageCaptionDataset
from memaudit.metrics.calibration import binomial_cdf
from memaudit.paths import POLICIES_DIR
from memaudit.phantoms.cohort import write_cohort
from memaudit.phantoms.identity import write_identity_cohort
from memaudit.reid.training import ReidTraining, train_verifier
from memaudit.scan import ScanRequest, run_scan

SEED = 7
POLICIES = ("ci", "hospital-release")


def _pixels_policy(name: str, folder: Path, *, criterion: str | None = None, verifier: Path | None = None) -> Path:
    data = yaml.safe_load((POLICIES_DIR / f"{name}.yaml").read_text())
    data["checks"]["nearest_neighbour"]["extractor"] = "pixels"
    data["checks"]["nearest_neighbour"].pop("extractor_weights", None)
    if criterion is not None:
        data["checks"].setdefault("extraction", {})["criterion"] = criterion
    if verifier is not None:  # as the policy's commented block and rule would be uncommented
        # the releases are real new studies: the count test's null holds for them
        data["checks"]["reidentification"] = {
            "enabled": True, "weights": str(verifier), "family_false_alarm": 0.01, "count_test": True
        }
        rule = {"metric": "reidentification.reidentified_patients", "at_most": 0, "severity": "fail"}
        data["rules"]["no-reidentified-patients"] = rule
    path = folder / f"{name}-pixels.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _upper_bound(failures: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound on the false-fail rate."""
    low, high = failures / trials, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if binomial_cdf(failures, trials, middle) > 1 - confidence else (low, middle)
    return high


def _identity_data(root: Path, args) -> tuple[Path, Path, Path]:
    """Training patients with ``args.reid_studies`` studies each, holdout patients with 2, and a verifier
    trained on the first and early-stopped on the second (its holdout pair AUC is printed)."""
    studies = args.reid_studies
    train = write_identity_cohort(root / "train", patients=args.train // studies, studies=studies, seed=SEED,
                                  prefix="train")  # fmt: skip
    holdout = write_identity_cohort(root / "holdout", patients=args.holdout // 2, studies=2, seed=SEED,
                                    first_patient=10**6, prefix="holdout")  # fmt: skip
    settings = ReidTraining(input_side=32, steps=args.reid_steps, seed=SEED, hard_neighbours=args.reid_hard_neighbours)
    record = train_verifier(ImageCaptionDataset(train), ImageCaptionDataset(holdout), settings, out=root / "verifier")
    print(f"verifier: holdout pair AUC {record.best_auc:.3f} at step {record.best_step}", flush=True)
    return train, holdout, root / "verifier"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--release-size", type=int, default=24)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--holdout", type=int, default=300)
    parser.add_argument("--policies", default=",".join(POLICIES), help="Shipped policies, comma-separated.")
    parser.add_argument("--criterion", choices=("separate", "combined"), default=None, help="Override the policies'.")
    parser.add_argument("--reid-studies", type=int, default=0, help="Re-identification on, N studies a patient.")
    parser.add_argument("--reid-steps", type=int, default=1500, help="The verifier's most training steps.")
    parser.add_argument("--reid-hard-neighbours", type=int, default=ReidTraining.hard_neighbours,
                        help="Look-alike pairs (reid train's option; 0: random pairs only).")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "false-fail.json")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        verifier = None
        if args.reid_studies:
            train, holdout, verifier = _identity_data(root, args)
        else:
            train = write_cohort(root / "train", count=args.train, seed=SEED, prefix="train")
            holdout = write_cohort(root / "holdout", count=args.holdout, seed=SEED, first_index=10**6, prefix="holdout")
        figures = {"releases": args.releases, "release_size": args.release_size, "train": args.train,
                   "holdout": args.holdout, "criterion": args.criterion, "reid_studies": args.reid_studies,
                   "reid_hard_neighbours": args.reid_hard_neighbours,
                   "policies": {}}  # fmt: skip
        for name in args.policies.split(","):
            policy = _pixels_policy(name, root, criterion=args.criterion, verifier=verifier)
            failed, rules, ran = 0, Counter(), Counter()  # ran: releases each check examined
            for release in range(args.releases):
                folder, first = root / "releases" / f"{name}-{release:04d}", 2 * 10**6 + release * args.release_size
                if args.reid_studies:  # a new study of each of the release's unseen patients
                    write_identity_cohort(folder, patients=args.release_size, studies=1, seed=SEED, first_patient=first,
                                          first_study=args.reid_studies, prefix="release")  # fmt: skip
                else:
                    write_cohort(folder, count=args.release_size, seed=SEED, first_index=first, prefix="release")
                request = ScanRequest(
                    train=train, holdout=holdout, policy=policy, images=folder, feature_cache=root / "cache"
                )
                result = run_scan(request)
                ran.update(name for name, check in result.checks.items() if check.status == "ok")
                if result.verdict != "pass":
                    failed += 1
                    rules.update(rule.id for rule in result.rules if rule.status in ("fail", "error"))
            bound = _upper_bound(failed, args.releases)
            figures["policies"][name] = {"failed": failed, "rate": failed / args.releases, "upper_bound_95": bound,
                                         "failing_rules": dict(rules), "checks_ran": dict(ran)}  # fmt: skip
            print(
                f"{name:<18} {failed:4d} of {args.releases} innocent releases failed ({failed / args.releases:.1%}; "
                f"95% upper bound {bound:.1%}); rules: {dict(rules) or '-'}"
            )
    figures["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{figures['seconds']:.0f}s; figures in {args.out}")


if __name__ == "__main__":
    main()
