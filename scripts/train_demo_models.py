"""Train memaudit's demo models from nothing: the base, then the hospital model (seeded, CPU).

    python scripts/train_demo_models.py --out build/demo-models [--stage base|hospital|ship|all]

Writes OUT/base and OUT/hospital-finetune/model (diffusers folders, recipe.json in each) and the
phantom data they were trained on; `ship` (part of `all`) exports both at float16 to models/demo/,
the copies memaudit ships. See memaudit/tiny/recipe.py, hospital.py and assets.py.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from memaudit.paths import PROJECT_ROOT
from memaudit.tiny.assets import export_half
from memaudit.tiny.hospital import HospitalRecipe, train_hospital
from memaudit.tiny.recipe import BaseRecipe, train_base


class Progress:
    """Prints the stage and every 50th step's loss with the time since the start."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.stage = ""

    def on_stage(self, name: str) -> None:
        self.stage = name
        print(f"== {name}", flush=True)

    def on_step(self, step: int, loss: float) -> None:
        if step % 50 == 0:
            print(f"{self.stage} step {step} loss {loss:.4f} ({time.monotonic() - self.started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stage", choices=("base", "hospital", "ship", "all"), default="all")
    args = parser.parse_args()
    progress = Progress()
    if args.stage in ("base", "all"):
        train_base(BaseRecipe(), args.out, on_stage=progress.on_stage, on_step=progress.on_step)
    if args.stage in ("hospital", "all"):
        progress.on_stage("hospital")
        train_hospital(HospitalRecipe(), args.out / "base", args.out, on_step=progress.on_step)
    if args.stage in ("ship", "all"):
        for name, source in (("base", args.out / "base"), ("hospital", args.out / "hospital-finetune" / "model")):
            print(f"== ship {source} -> {export_half(source, PROJECT_ROOT / 'models' / 'demo' / name)}", flush=True)


if __name__ == "__main__":
    main()
