"""Re-identification on a generative model: the demo base fine-tuned on an archive in which a few patients
come back often, scanned with the re-identification check: does it name the patients the model learned,
without a pixel copy of any study, and nobody for models that never saw them?

    .venv/bin/python bench/reid_model.py [--steps 2000] [--patients 600 --studies 2] \
        [--frequent 8 --frequent-studies 200] [--models base,fine-tuned,control] [--anatomy-only] \
        [--out build/reid-model]

The training archive is `bench/reid_phantoms.py`'s (`write_longitudinal_cohort`); the holdout is 100 unseen
patients with 3 studies each (the verifier's early stopping and the scan's calibrations). ``--anatomy-only``:
every study draws its own lung texture, so a patient's identity is their anatomy alone (a coarser identity,
within reach of the demo UNet's detail). The verifier is
trained as `reid_phantoms.py` trains it; the fine-tunes
are the hospital model's (full, batch 32, learning rate 2e-4, from models/demo/base). Models: `base` (never
saw the patients; scanned alone), `fine-tuned` (on the archive) and `control` (the same fine-tune on an
archive of the same shape with other patients: it never saw this training set, so anyone it names is a
false name). Policy: bench/reid_model_policy.yaml (the ground-truth bench's scan with the check and its rule).
The patient count test does not run on a model's images: the figures in bench/results/reid-model-*.json that
show it were measured by earlier versions of the check (bench/results/README.md says which), which is how its
nulls were found to fail. Writes OUT/figures.json (models scanned before are kept) and
prints it; every stage resumes from OUT.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

import memaudit  # noqa: F401  (runtime guards)
from memaudit.data import ImageCaptionDataset
from memaudit.finetune.run import finetune
from memaudit.phantoms.identity import write_identity_cohort, write_longitudinal_cohort
from memaudit.reid.training import ReidTraining, train_verifier
from memaudit.scan import ScanRequest, run_scan
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import HospitalRecipe, hospital_train_config

HERE = Path(__file__).resolve().parent
SIDE = 32  # the demo models' image side
BASE = DEMO_MODELS_DIR / "base"
SECONDS = "seconds.txt"  # a fine-tune's wall time, beside its model folder
CONTROL_FIRST_PATIENT = 20_000  # the control's archive: patients no other part of the bench has


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="Fine-tuning steps (batch 32).")
    parser.add_argument("--patients", type=int, default=600)
    parser.add_argument("--studies", type=int, default=2)
    parser.add_argument("--frequent", type=int, default=8)
    parser.add_argument("--frequent-studies", type=int, default=200)
    parser.add_argument("--verifier-steps", type=int, default=1500)
    parser.add_argument(
        "--models", default="base,fine-tuned", help="Of base, fine-tuned, control (comma-separated; none: the verifier)"
    )
    parser.add_argument("--anatomy-only", action="store_true", help="Identity is the anatomy (no patient texture).")
    parser.add_argument("--out", type=Path, default=Path("build/reid-model"))
    args = parser.parse_args()
    out = args.out
    train = write_longitudinal_cohort(
        out / "train", frequent=args.frequent, frequent_studies=args.frequent_studies, patients=args.patients,
        studies=args.studies, seed=0, size=SIDE, own_texture=not args.anatomy_only,
    )  # fmt: skip
    holdout = write_identity_cohort(
        out / "holdout", patients=100, studies=3, first_patient=5000, seed=0, size=SIDE,
        own_texture=not args.anatomy_only,
    )  # fmt: skip
    settings = ReidTraining(
        input_side=SIDE, embedding_dim=32, width=16, steps=args.verifier_steps, evaluate_every=100, patience=10
    )
    verifier = train_verifier(
        ImageCaptionDataset(train), ImageCaptionDataset(holdout), settings, out=out / "verifier", on_evaluation=print
    )
    policy = yaml.safe_load((HERE / "reid_model_policy.yaml").read_text())
    policy["checks"]["reidentification"]["weights"] = str((out / "verifier").resolve())
    (out / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    learned = {f"patient-p{patient:06d}" for patient in range(args.frequent)}
    models = {"base": BASE}
    if "fine-tuned" in args.models:
        models["fine-tuned"] = _finetuned(train, steps=args.steps, out=out / "finetune")
    if "control" in args.models:  # the same archive's shape, other patients: the model never saw this training set
        other = write_longitudinal_cohort(
            out / "control-train", frequent=args.frequent, frequent_studies=args.frequent_studies,
            patients=args.patients, studies=args.studies, seed=0, size=SIDE, first_patient=CONTROL_FIRST_PATIENT,
            own_texture=not args.anatomy_only,
        )  # fmt: skip
        models["control"] = _finetuned(other, steps=args.steps, out=out / "control-finetune")
    previous = out / "figures.json"
    figures = json.loads(previous.read_text()) if previous.is_file() else {"models": {}}
    figures |= {
        "training_images": len(ImageCaptionDataset(train).records),
        "frequent_patients": args.frequent,
        "frequent_studies": args.frequent_studies,
        "generic_patients": args.patients,
        "generic_studies": args.studies,
        "identity": "anatomy" if args.anatomy_only else "anatomy and lung texture",
        "finetune_steps": args.steps,
        "verifier_pair_auc_holdout_patients": verifier.best_auc,
    }
    for name in [name for name in args.models.split(",") if name != "none"]:
        model = models[name]
        timing = model.parent / SECONDS
        figures["models"][name] = _scanned(
            model, train=train, holdout=holdout, policy=out / "policy.yaml", learned=learned
        ) | ({"finetune_seconds": float(timing.read_text())} if timing.is_file() else {})
    (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


def _finetuned(train: Path, *, steps: int, out: Path) -> Path:
    """The base fully fine-tuned on ``train`` with the hospital model's settings, its seconds in ``SECONDS``
    beside it; a finished fine-tune in ``out`` is taken as it is."""
    timing = out / SECONDS
    if (out / "model" / "model_index.json").is_file() and timing.is_file():
        return out / "model"
    started = time.monotonic()
    config = hospital_train_config(HospitalRecipe(steps=steps))
    tuned = finetune(BASE, train, config, out=out, on_step=_every(100)).model_dir
    timing.write_text(f"{round(time.monotonic() - started, 1)}\n")
    return tuned


def _scanned(model: Path, *, train: Path, holdout: Path, policy: Path, learned: set[str]) -> dict:
    started = time.monotonic()
    result = run_scan(ScanRequest(train=train, holdout=holdout, policy=policy, model=model))
    reid = result.checks["reidentification"]
    evidence = reid.reidentification
    named = [patient.patient_id for patient in evidence.patients] if evidence else []
    extraction = result.checks["extraction"]
    return {
        "verdict": result.verdict,
        "seconds": round(time.monotonic() - started, 1),
        "extracted": extraction.metrics.get("extraction.extracted_count"),
        "attacked_prompts": len(extraction.extraction.attacked) if extraction.extraction else 0,
        "near_copy_rate": result.checks["nearest_neighbour"].metrics.get("nearest_neighbour.near_copy_rate"),
        "fid": result.checks["fid"].metrics.get("fid.fid"),
        "reid_status": reid.status,
        "count_tested": evidence.count_tested if evidence else None,
        "reid_warnings": reid.warnings,
        "images_scored": evidence.images_scored if evidence else 0,
        "named": named,
        "named_learned": f"{len(set(named) & learned)}/{len(learned)}",
        "named_other": len(set(named) - learned),
        "named_by_images": [patient.patient_id for patient in evidence.patients if patient.images] if evidence else [],
        "evidence": [patient.model_dump(mode="json") for patient in evidence.patients] if evidence else [],
    }


def _every(steps: int):
    started = time.monotonic()

    def on_step(step: int, loss: float) -> None:
        if step % steps == 0:
            print(f"fine-tune step {step} loss {loss:.4f} ({time.monotonic() - started:.0f} s)", flush=True)

    return on_step


if __name__ == "__main__":
    main()
