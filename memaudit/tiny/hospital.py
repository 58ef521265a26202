"""The "hospital" model: memaudit's base fully fine-tuned on a set with planted memorization.

The training set mixes generic phantom studies (indications on some) with a few planted studies
whose captions are unique (every one carries an indication) and which are exported many times, as
duplicated studies are in real archives. The holdout set holds fresh studies in the planted
captions' style, never trained on: what scans calibrate against. All three parts come from one
phantom seed over disjoint patient indices, so the ground truth (which ids are planted) is exact.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from memaudit.atomic_files import write_atomic
from memaudit.data import ImageCaptionDataset
from memaudit.phantoms.cohort import write_cohort
from memaudit.tiny.recipe import RECIPE_NAME

PLANTED_FIRST_INDEX = 100_000
HOLDOUT_FIRST_INDEX = 200_000


@dataclass(frozen=True)
class HospitalRecipe:
    generic: int = 1000
    planted: int = 12
    repeats: int = 50
    holdout: int = 100
    image_size: int = 32
    indication_share: float = 0.5
    data_seed: int = 2
    steps: int = 8000
    batch_size: int = 32
    learning_rate: float = 2e-4
    seed: int = 0


@dataclass(frozen=True)
class HospitalData:
    train: Path
    holdout: Path
    planted_ids: tuple[str, ...]  # every training row of a planted study (all its copies)
    planted_captions: tuple[str, ...]
    recipe: HospitalRecipe


def write_hospital_data(recipe: HospitalRecipe, out: Path) -> HospitalData:
    """Write train/ (generic + planted copies), holdout/ and ground_truth.json under ``out``."""
    out = Path(out)
    common = {"seed": recipe.data_seed, "size": recipe.image_size, "prefix": "study"}
    generic = write_cohort(
        out / "train" / "generic", count=recipe.generic, indication_share=recipe.indication_share, **common
    )
    planted = write_cohort(
        out / "train" / "planted",
        count=recipe.planted,
        first_index=PLANTED_FIRST_INDEX,
        indication_share=1.0,
        repeats=recipe.repeats,
        **common,
    )
    holdout = write_holdout(recipe, out / "holdout", count=recipe.holdout)
    rows = []
    for part in (generic, planted):
        for line in (part / "metadata.jsonl").read_text().splitlines():
            row = json.loads(line)
            row["file_name"] = f"{part.name}/{row['file_name']}"
            rows.append(row)
    write_atomic(out / "train" / "metadata.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    planted_rows = ImageCaptionDataset(planted).records
    captions = ImageCaptionDataset(out / "train").captions
    planted_captions = tuple(dict.fromkeys(record.text for record in planted_rows))
    clashes = [text for text in planted_captions if captions.count(text) != recipe.repeats]
    if clashes or len(planted_captions) != recipe.planted:
        raise ValueError(f"planted captions are not unique to their study: {clashes}")
    truth = HospitalData(
        train=out / "train",
        holdout=holdout,
        planted_ids=tuple(record.id for record in planted_rows),
        planted_captions=planted_captions,
        recipe=recipe,
    )
    record = {"recipe": asdict(recipe), "planted_ids": list(truth.planted_ids)}
    record["planted_captions"] = list(planted_captions)
    write_atomic(out / "ground_truth.json", json.dumps(record, indent=2) + "\n")
    return truth


def write_holdout(recipe: HospitalRecipe, out: Path, *, count: int) -> Path:
    """``count`` fresh holdout studies in the planted captions' style; a longer holdout starts with the
    recipe's own (the same seed and patient indices), so a benchmark can ask how a result depends on
    the holdout's size."""
    common = {"seed": recipe.data_seed, "size": recipe.image_size, "prefix": "study"}
    return write_cohort(out, count=count, first_index=HOLDOUT_FIRST_INDEX, indication_share=1.0, **common)


def hospital_train_config(recipe: HospitalRecipe):
    from memaudit.finetune.config import TrainConfig

    return TrainConfig(
        method="full",
        mask="all",
        steps=recipe.steps,
        batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate,
        seed=recipe.seed,
        checkpoint_every=max(1, recipe.steps // 10),
    )


def train_hospital(recipe: HospitalRecipe, base: Path, out: Path, *, on_step=None) -> Path:
    """Write the data and fully fine-tune ``base`` on it; returns the hospital model folder."""
    from memaudit.finetune.run import finetune

    out = Path(out)
    data = write_hospital_data(recipe, out / "data" / "hospital")
    result = finetune(base, data.train, hospital_train_config(recipe), out=out / "hospital-finetune", on_step=on_step)
    record = {"recipe": asdict(recipe), "data_digest": ImageCaptionDataset(data.train).digest}
    record["unet_loss"] = {"first": result.log.losses[0], "last": result.log.losses[-1]}
    write_atomic(result.model_dir / RECIPE_NAME, json.dumps(record, indent=2) + "\n")
    return result.model_dir


def data_for_model(model: Path, out: Path) -> HospitalData:
    """Regenerate the data a hospital model was trained on, from the recipe.json in its folder.

    The data's digest must equal the one its training recorded: otherwise the ground truth (which
    studies are planted) would not be the model's.
    """
    from memaudit.errors import MemauditError

    recipe_file = Path(model) / RECIPE_NAME
    try:
        recorded = json.loads(recipe_file.read_text())
        recipe = HospitalRecipe(**recorded["recipe"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MemauditError(f"{recipe_file}: not a hospital model's recipe ({error})") from error
    data = write_hospital_data(recipe, out)
    digest = ImageCaptionDataset(data.train).digest
    if digest != recorded.get("data_digest"):
        raise MemauditError(
            f"{out}: the regenerated hospital data (sha256 {digest[:12]}) is not what {model} was trained on "
            f"(sha256 {str(recorded.get('data_digest'))[:12]})"
        )
    return data
