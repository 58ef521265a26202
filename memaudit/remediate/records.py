"""What a remediation records besides its result: trials as TrialRecords, the reusable mask.json, and
a SLSA-style provenance statement of the remediated model."""

from __future__ import annotations

import json
from pathlib import Path

import optuna

from memaudit import __version__
from memaudit.checkpoint import WeightFile
from memaudit.errors import MemauditError
from memaudit.finetune.config import TrainConfig
from memaudit.finetune.mask import BlockMask
from memaudit.finetune.mask_spec import parse_mask
from memaudit.finetune.presets import PRESETS, preset_mask
from memaudit.results.remediation_result import TrialRecord


def trial_record(trial: optuna.trial.FrozenTrial, front: set[int]) -> TrialRecord:
    return TrialRecord(
        number=trial.number,
        state=trial.state.name.lower(),
        space=trial.user_attrs.get("space"),
        mask=trial.user_attrs.get("mask"),
        trainable_parameters=trial.user_attrs.get("trainable_parameters"),
        memorization=trial.values[0] if trial.values else None,
        fid=trial.values[1] if trial.values else None,
        pareto=trial.number in front,
    )


def mask_file_text(space: str, mask: BlockMask) -> str:
    """mask.json: the space with the unit names and bits (`--mask` reads it back)."""
    return json.dumps({"space": space, **json.loads(mask.to_json())}, indent=2) + "\n"


def read_mask_file(path: Path, unet) -> tuple[str, BlockMask]:
    """(space, mask) from a remediation's mask.json, or a preset by name (e.g. memcontrol-sd15)."""
    if str(path) in PRESETS:
        return preset_mask(str(path), unet)
    try:
        space = json.loads(Path(path).read_text(encoding="utf-8"))["space"]
    except (OSError, ValueError, KeyError) as error:
        raise MemauditError(f"{path}: a remediation mask file needs 'space', 'blocks' and 'bits' ({error})") from error
    return space, parse_mask(path, unet)


def provenance(
    *,
    base_files: list[WeightFile],
    train_digest: str,
    policy_sha256: str,
    config: TrainConfig,
    model_files: list[WeightFile],
) -> dict:
    """A SLSA-style provenance record of the remediated model: what went in, how, and what came out."""
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "predicateType": "https://slsa.dev/provenance/v1",
        "subject": [{"name": f"model/{w.path}", "digest": {"sha256": w.sha256}} for w in model_files],
        "predicate": {
            "buildDefinition": {
                "buildType": "urn:memaudit:remediate:v1",
                "externalParameters": {"policy_sha256": policy_sha256, "training": config.model_dump(mode="json")},
                "resolvedDependencies": [
                    *({"name": f"base/{w.path}", "digest": {"sha256": w.sha256}} for w in base_files),
                    {"name": "training-data", "digest": {"sha256": train_digest}},
                ],
            },
            "runDetails": {"builder": {"id": f"memaudit {__version__}"}},
        },
    }
