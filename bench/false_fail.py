"""How often a shipped policy fails an innocent release: synthetic data drawn independently from the
training distribution, never trained on, audited with `memaudit scan --images` (DESIGN 3.5).

    .venv/bin/python bench/false_fail.py [--releases 100] [--release-size 24] [--train 2000] [--holdout 300]
        [--policies ci,hospital-release] [--criterion separate|combined] [--out bench/results/false-fail.json]

Training, holdout and every release are phantom chest X-rays (64 px) of distinct patients from the
same generator. Each release is audited with shipped policies (default `ci` and `hospital-release`;
`demo --holdout 100` tries the small-holdout case the family's count test is for), with one change:
the `pixels` extractor instead of xrv-densenet121, whose weights cannot be fetched here; `--criterion
combined` also judges distance and specificity together (`checks.extraction.criterion`).
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
from memaudit.metrics.calibration import binomial_cdf
from memaudit.paths import POLICIES_DIR
from memaudit.phantoms.cohort import write_cohort
from memaudit.scan import ScanRequest, run_scan

SEED = 7
POLICIES = ("ci", "hospital-release")


def _pixels_policy(name: str, folder: Path, *, criterion: str | None = None) -> Path:
    data = yaml.safe_load((POLICIES_DIR / f"{name}.yaml").read_text())
    data["checks"]["nearest_neighbour"]["extractor"] = "pixels"
    data["checks"]["nearest_neighbour"].pop("extractor_weights", None)
    if criterion is not None:
        data["checks"].setdefault("extraction", {})["criterion"] = criterion
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--release-size", type=int, default=24)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--holdout", type=int, default=300)
    parser.add_argument("--policies", default=",".join(POLICIES), help="Shipped policies, comma-separated.")
    parser.add_argument("--criterion", choices=("separate", "combined"), default=None, help="Override the policies'.")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "false-fail.json")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        train = write_cohort(root / "train", count=args.train, seed=SEED, prefix="train")
        holdout = write_cohort(root / "holdout", count=args.holdout, seed=SEED, first_index=10**6, prefix="holdout")
        figures = {"releases": args.releases, "release_size": args.release_size, "train": args.train,
                   "holdout": args.holdout, "criterion": args.criterion, "policies": {}}  # fmt: skip
        for name in args.policies.split(","):
            policy = _pixels_policy(name, root, criterion=args.criterion)
            failed, rules = 0, Counter()
            for release in range(args.releases):
                folder = write_cohort(
                    root / "releases" / f"{name}-{release:04d}",
                    count=args.release_size,
                    seed=SEED,
                    first_index=2 * 10**6 + release * args.release_size,
                    prefix="release",
                )
                request = ScanRequest(
                    train=train, holdout=holdout, policy=policy, images=folder, feature_cache=root / "cache"
                )
                result = run_scan(request)
                if result.verdict != "pass":
                    failed += 1
                    rules.update(rule.id for rule in result.rules if rule.status in ("fail", "error"))
            bound = _upper_bound(failed, args.releases)
            figures["policies"][name] = {"failed": failed, "rate": failed / args.releases,
                                         "upper_bound_95": bound, "failing_rules": dict(rules)}  # fmt: skip
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
