"""The demo models memaudit ships (models/demo/base and models/demo/hospital) and how they are made.

They come from `scripts/train_demo_models.py` (the base recipe, then the hospital fine-tune) and are
stored at half precision to keep the repository small; `load_checkpoint` reads them back at float32.
Each folder keeps the recipe.json its training wrote, plus the precision it was exported at.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from memaudit.checkpoint import load_checkpoint
from memaudit.checkpoint.saving import save_diffusers_folder
from memaudit.paths import MODELS_DIR
from memaudit.tiny.recipe import RECIPE_NAME

DEMO_MODELS_DIR = MODELS_DIR / "demo"


def export_half(source: Path, target: Path) -> Path:
    """Copy the diffusers folder ``source`` to ``target`` with float16 weights and its recipe.json.

    Written beside ``target`` and moved into place at the end: a failed export leaves no folder.
    """
    source, target = Path(source), Path(target)
    recipe_file = source / RECIPE_NAME
    if not recipe_file.is_file():
        raise FileNotFoundError(f"{recipe_file}: a demo model needs the recipe.json its training wrote")
    pipeline = load_checkpoint(source).pipeline
    pipeline.to(torch.float16)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as scratch:
        staged = save_diffusers_folder(pipeline, Path(scratch) / "model")
        recipe = json.loads(recipe_file.read_text())
        recipe["exported"] = {"dtype": "float16", "from": source.name}
        (staged / RECIPE_NAME).write_text(json.dumps(recipe, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    return target
