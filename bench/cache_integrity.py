"""What checking the cache costs: a scan with a warm cache, its seals checked, against the same scan with
the checks switched off (the reads as they were before caches were sealed), measured in one run.

    .venv/bin/python bench/cache_integrity.py [--repeats 2] [--policy demo] [--steps 10]

The demo's hospital model and its data (models/demo/hospital), scanned with a shipped policy less the
re-trigger check (it needs a previous scan) and, with ``--steps``, fewer sampling steps (generation is
most of a scan's time: fewer steps make the cache's share larger, a harder test for the checks). A first
scan warms the cache (features, comparison pixels); then the warm scan runs ``--repeats`` times each way,
alternating. Prints each scan's seconds, the ratio of the medians, and the seconds spent computing seals
(HMAC over every cached byte read or written), the cost the wall-clock ratio carries with the machine's
noise.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import yaml

import memaudit  # noqa: F401  (runtime guards)
import memaudit.data.pixel_store as pixel_store
import memaudit.features.cache as feature_cache
import memaudit.scan.work_log as work_log
from memaudit import sealing
from memaudit.checkpoint import load_checkpoint
from memaudit.paths import POLICIES_DIR
from memaudit.scan import ScanRequest, run_scan
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import data_for_model


def _unchecked_read(path: Path, *, provenance: dict) -> bytes:
    """The content of a sealed entry, trusted as a cache was before seals: no digest, no comparison."""
    return Path(path).read_bytes().partition(b"\n")[2]


@contextmanager
def seals_unchecked():
    with ExitStack() as stack:
        for module in (feature_cache, work_log):
            stack.enter_context(mock.patch.object(module, "read_sealed", _unchecked_read))
        stack.enter_context(mock.patch.object(pixel_store, "check_seal_beside", lambda path, **kwargs: None))
        yield


class SealClock:
    """Seconds spent computing seals (HMAC of every byte of every cached entry read or written)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextmanager
    def counting(self):
        original = sealing.seal_of

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        with mock.patch.object(sealing, "seal_of", timed):
            yield


def _policy(name: str, folder: Path, steps: int | None) -> Path:
    content = yaml.safe_load((POLICIES_DIR / f"{name}.yaml").read_text())
    content["checks"].pop("retrigger", None)
    if steps is not None:
        content["sampling"]["num_inference_steps"] = steps
        triage = content["checks"].get("noise_magnitude", {})
        triage["steps"] = min(triage.get("steps", 1), steps)
    content["rules"] = {k: v for k, v in content["rules"].items() if not v["metric"].startswith("retrigger.")}
    path = folder / f"{name}-no-retrigger.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--policy", default="demo")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the policy's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memaudit-cache-bench-") as folder:
        root = Path(folder)
        model = DEMO_MODELS_DIR / "hospital"
        data = data_for_model(model, root / "data")
        checkpoint = load_checkpoint(model)
        request = ScanRequest(
            train=data.train, holdout=data.holdout, policy=_policy(args.policy, root, args.steps), model=model,
            feature_cache=root / "cache",
        )  # fmt: skip
        start = time.perf_counter()
        reference = run_scan(request, checkpoint=checkpoint)
        print(f"cold scan (fills the cache): {time.perf_counter() - start:.1f} s, verdict {reference.verdict}")
        times: dict[str, list[float]] = {"checked": [], "unchecked": []}
        clock = SealClock()
        for _ in range(args.repeats):
            for way in ("unchecked", "checked"):
                with ExitStack() as stack:
                    stack.enter_context(seals_unchecked() if way == "unchecked" else clock.counting())
                    start = time.perf_counter()
                    result = run_scan(request, checkpoint=checkpoint)
                    times[way].append(time.perf_counter() - start)
                assert result.to_json() == reference.to_json(), "a warm scan must give the cold scan's result"
                print(f"warm scan, seals {way}: {times[way][-1]:.1f} s", flush=True)
        checked, unchecked = statistics.median(times["checked"]), statistics.median(times["unchecked"])
        ratio = checked / unchecked
        print(f"median warm scan: checked {checked:.1f} s, unchecked {unchecked:.1f} s, ratio {ratio:.3f}")
        share = clock.seconds / args.repeats / checked
        print(f"seals computed: {clock.seconds / args.repeats:.3f} s per scan ({share:.2%} of the checked scan)")


if __name__ == "__main__":
    main()
