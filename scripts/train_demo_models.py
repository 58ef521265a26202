"""Train memaudit's demo models from nothing: the base, then the hospital model (seeded, CPU).

    python scripts/train_demo_models.py --out build/demo-models [--stage base|hospital|ship|all]
    python scripts/train_demo_models.py --denoiser dit --out build/dit-models [--stage ...] [--hospital-steps N]
        [--base-steps N]   (0: the hospital fine-tune starts from random weights)

Writes OUT/base and OUT/hospital-finetune/model (diffusers folders, recipe.json in each) and the
phantom data they were trained on; `ship` (part of `all`) exports both at float16 to models/demo/,
the copies memaudit ships. See memaudit/tiny/recipe.py, hospital.py and assets.py.
`--denoiser dit` trains the transformer twin instead (memaudit/tiny/dit_recipe.py: PixArt-Sigma layout
on the shipped demo base's VAE; the same hospital data and fine-tune for DIT_HOSPITAL_STEPS steps),
shipped to models/dit-demo/.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from memaudit.paths import PROJECT_ROOT
from memaudit.tiny.assets import export_half
from memaudit.tiny.dit_recipe import DitRecipe, train_dit_base
from memaudit.tiny.hospital import HospitalRecipe, train_hospital
from memaudit.tiny.recipe import BaseRecipe, train_base

# The transformer's hospital fine-tune is shorter than the UNet's 8000 steps (CPU time: a step of the
# PixArt-layout model costs about the UNet's); its planted studies are still seen ~3000 times each.
DIT_HOSPITAL_STEPS = 3000


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
    parser.add_argument("--denoiser", choices=("unet", "dit"), default="unet")
    parser.add_argument(
        "--hospital-steps", type=int, default=None, help="The hospital fine-tune's steps (default: the shipped one's)."
    )
    parser.add_argument(
        "--base-steps", type=int, default=None, help="The transformer base's steps (--denoiser dit; 0: untrained)."
    )
    args = parser.parse_args()
    if args.base_steps is not None and (args.denoiser != "dit" or args.base_steps < 0):
        parser.error("--base-steps takes a number >= 0, with --denoiser dit")
    progress = Progress()
    dit = args.denoiser == "dit"
    if args.stage in ("base", "all"):
        if dit:
            vae = (PROJECT_ROOT / "models" / "demo" / "base" / "vae").relative_to(PROJECT_ROOT)
            recipe = DitRecipe() if args.base_steps is None else DitRecipe(steps=args.base_steps)
            train_dit_base(recipe, vae, args.out, on_stage=progress.on_stage, on_step=progress.on_step)
        else:
            train_base(BaseRecipe(), args.out, on_stage=progress.on_stage, on_step=progress.on_step)
    if args.stage in ("hospital", "all"):
        progress.on_stage("hospital")
        steps = args.hospital_steps or (DIT_HOSPITAL_STEPS if dit else HospitalRecipe().steps)
        recipe = HospitalRecipe(steps=steps)
        train_hospital(recipe, args.out / "base", args.out, on_step=progress.on_step)
    if args.stage in ("ship", "all"):
        shipped = PROJECT_ROOT / "models" / ("dit-demo" if dit else "demo")
        for name, source in (("base", args.out / "base"), ("hospital", args.out / "hospital-finetune" / "model")):
            print(f"== ship {source} -> {export_half(source, shipped / name)}", flush=True)


if __name__ == "__main__":
    main()
