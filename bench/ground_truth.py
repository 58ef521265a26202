"""Ground-truth benchmark: memaudit's detectors on a model whose memorized studies are known.

    .venv/bin/python bench/ground_truth.py [--models models/demo] --out bench/results \
        [--variants full,svdiff,difffit,attention] [--mitigations none,rwa,threshold] \
        [--generations 32] [--holdout-prompts 24]

For each variant (full fine-tuning without mitigation is the hospital model itself: the same base, data,
config and seed; `base` is the base model, which never saw the hospital data; the others are fine-tuned
here from the base on the same hospital data with the engine of `memaudit finetune`), it measures:
- detection: noise-magnitude AUC and TPR@1%FPR of the planted captions against the holdout captions
  (style-matched, never trained on), at 1 and 10 denoising steps and 1 and 4 generations;
- extraction: the clique attack on every planted caption and on holdout captions; recall = planted
  studies whose own training image is extracted. An extraction from a holdout caption (never trained
  on) names the training image its generations copy: a planted study there is a cross-prompt leak (the
  model reproduces a memorized patient for a prompt it never saw, a real leak), any other training
  image counts as a false extraction;
- AMD, near-copy rate and FID from a full `memaudit scan` with bench/ground_truth_policy.yaml.
Each variant's figures go to OUT/<variant>/figures.json (a rerun skips finished variants, and
fine-tunes resume), and OUT/table.md collects every finished variant in the columns of the
MemControl paper's Table 1 plus detection AUC and the attacker's columns (bench/attacker_figures.py:
membership AUC of planted and generic studies, and planted captions whose own study comes back under a
perturbation of their embedding; `--attacker` adds them to finished variants whose model is at hand).
`--rescan` reruns only the scan columns of finished variants (after a change to the scan),
retraining a fine-tune that is no longer at hand (seeded, so the same model up to the thread count's
summation order), and keeps the rest of their figures; the table marks verdicts from a scan older than
the current extraction criterion.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch
from attacker_figures import attacker_figures

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint
from memaudit.data import ImageCaptionDataset, conform
from memaudit.denoiser import denoiser_for
from memaudit.finetune.config import Mitigation
from memaudit.finetune.run import finetune
from memaudit.metrics.calibration import holdout_quantile
from memaudit.metrics.extraction import attack_prompt, nearest_tiled_l2
from memaudit.metrics.roc import roc_auc, tpr_at_fpr
from memaudit.sampling.generate import generate_images
from memaudit.sampling.probe import noise_magnitude_scores
from memaudit.sampling.seeds import sample_seed
from memaudit.sampling.text import encode_prompts
from memaudit.scan import ScanRequest, run_scan
from memaudit.tiny.assets import DEMO_MODELS_DIR
from memaudit.tiny.hospital import HospitalData, data_for_model, hospital_train_config

HERE = Path(__file__).resolve().parent
POLICY = HERE / "ground_truth_policy.yaml"
# Learning rates per method: full and attention tuning as the hospital fine-tune; the scale- and
# spectrum-only methods at 5x (their parameters move by multiplying, as in the SVDiff/DiffFit papers).
LEARNING_RATE_FACTOR = {"full": 1.0, "attention": 1.0, "svdiff": 5.0, "difffit": 5.0, "lora": 5.0}
# Which extraction criterion made a row's scan verdict: rows without it predate the family test.
SCAN_CRITERION = "verify+specificity+family(bh+count)"  # the family test: BH and the count test
SAMPLING = {"num_inference_steps": 25, "guidance_scale": 3.0, "scheduler": "ddim"}


def policy_digest(policy: Path = POLICY) -> str:
    """Which version of the scan policy made a row's scan columns (the table marks rows from another)."""
    return hashlib.sha256(policy.read_bytes()).hexdigest()[:12]


def latent_side(pipeline, image_size: int) -> int:
    """The latent side of ``image_size`` pixels for the model's family (its VAE's downsampling)."""
    return denoiser_for(pipeline).latent_side(image_size)


def unique_images(dataset: ImageCaptionDataset, size: int) -> tuple[torch.Tensor, list[str]]:
    first = {}
    for row, record in enumerate(dataset.records):
        first.setdefault(record.file_name, row)
    rows = list(first.values())
    images = torch.stack([conform(dataset.load_image(row), size=size, channels=3) for row in rows])
    return images, [dataset.records[row].file_name for row in rows]


# Noise-magnitude settings (triage schedule, probe steps, generations): on the sampling schedule (keys
# S<steps>G<generations>) and on a short triage schedule of its own (T<schedule>S<steps>G<generations>;
# T2S1G4 is the shipped policies' triage).
DETECTION_SETTINGS = [(25, s, g) for s, g in ((1, 1), (10, 1), (1, 4), (2, 4), (3, 4), (5, 4), (10, 4))] + [
    (2, 1, 4),
    (3, 2, 4),
]


def detection_key(schedule: int, steps: int, generations: int) -> str:
    prefix = "" if schedule == SAMPLING["num_inference_steps"] else f"T{schedule}"
    return f"{prefix}S{steps}G{generations}"


def detection_captions(data: HospitalData) -> tuple[list[str], list[str]]:
    """The planted captions and the distinct holdout captions, as the detection and attack columns use them."""
    return list(data.planted_captions), list(dict.fromkeys(ImageCaptionDataset(data.holdout).captions))


def detection(pipeline, planted: list[str], holdout: list[str], latent_size: int, *, have: dict | None = None) -> dict:
    """AUC and TPR@1%FPR of planted vs holdout captions per setting; settings already in ``have`` are kept."""
    embeddings = encode_prompts(pipeline, planted + holdout)
    empty = encode_prompts(pipeline, [""])
    figures = dict(have or {})
    for schedule, steps, generations in DETECTION_SETTINGS:
        key = detection_key(schedule, steps, generations)
        if key in figures:
            continue
        scores = noise_magnitude_scores(
            pipeline,
            embeddings,
            empty,
            generations=generations,
            steps=steps,
            latent_size=latent_size,
            seed=0,
            batch_size=64,
            **(SAMPLING | {"num_inference_steps": schedule}),
        )
        members, others = scores[: len(planted)], scores[len(planted) :]
        figures[key] = {
            "auc": roc_auc(members, others),
            "tpr_at_1pct_fpr": tpr_at_fpr(members, others, 0.01),
        }
    return figures


def extraction(pipeline, data, planted: list[str], holdout: list[str], *, generations: int, image_size: int) -> dict:
    train = ImageCaptionDataset(data.train)
    train_images, train_files = unique_images(train, image_size)
    holdout_images, _ = unique_images(ImageCaptionDataset(data.holdout), image_size)
    # The bench's own attack keeps the interpolated 0.01 quantile its published table was measured with.
    threshold = holdout_quantile(nearest_tiled_l2(holdout_images, train_images)[0], 0.01)
    planted_ids = set(data.planted_ids)
    own_file = {record.text: record.file_name for record in train.records if record.id in planted_ids}
    planted_files = set(own_file.values())
    empty = encode_prompts(pipeline, [""])
    prompts = planted + holdout
    # Each prompt's generations side by side: row p repeated `generations` times, prompts in order.
    embeddings = encode_prompts(pipeline, prompts)[[row for row in range(len(prompts)) for _ in range(generations)]]
    seeds = [sample_seed(0, "bench-extraction", item) for item in range(len(prompts) * generations)]
    images = generate_images(
        pipeline, embeddings, empty, seeds=seeds, latent_size=latent_side(pipeline, image_size), batch_size=64,
        **SAMPLING,
    )
    outcomes = []
    for index, prompt in enumerate(prompts):
        attack = attack_prompt(
            images[index * generations : (index + 1) * generations],
            train_images,
            edge_threshold=0.1,
            min_clique=max(2, round(generations / 10)),
            verify_threshold=threshold,
        )
        nearest = train_files[attack.nearest_train] if attack.nearest_train is not None else None
        outcomes.append(
            {
                "planted": index < len(planted),
                "clique": len(attack.clique),
                "distance": attack.distance,
                "extracted": attack.extracted,
                "own_image": nearest is not None and nearest == own_file.get(prompt),
                "nearest_planted": nearest in planted_files,
            }
        )
    counts = extraction_counts(outcomes)
    return {"verify_threshold": threshold, "generations": generations, **counts, "prompts": outcomes}


def extraction_counts(outcomes: list[dict]) -> dict:
    """The extraction columns, from the per-prompt outcomes (so older figures files tabulate the same way)."""
    planted = [o for o in outcomes if o["planted"]]
    holdout = [o for o in outcomes if not o["planted"]]
    own = sum(o["extracted"] and o["own_image"] for o in planted)
    return {
        "planted_extracted": own,
        "planted": len(planted),
        "recall": own / len(planted),
        # a planted caption whose clique copies a training image other than its own study's
        "planted_other_image": sum(o["extracted"] and not o["own_image"] for o in planted),
        "holdout_planted_leaks": sum(o["extracted"] and o["nearest_planted"] for o in holdout),
        "false_extractions": sum(o["extracted"] and not o["nearest_planted"] for o in holdout),
        "holdout_prompts": len(holdout),
    }


def scan_figures(checkpoint, data, work: Path, *, policy: Path = POLICY) -> dict:
    request = ScanRequest(
        train=data.train,
        holdout=data.holdout,
        policy=policy,
        model=checkpoint.source,
        feature_cache=work / "feature-cache",
    )
    result = run_scan(request, checkpoint=checkpoint)
    extraction_check = result.checks["extraction"].extraction
    triage = result.checks["noise_magnitude"].noise_magnitude
    planted_ids = set(data.planted_ids)
    attacked = extraction_check.attacked if extraction_check else []
    return {
        "verdict": result.verdict,
        "amd": result.checks["nearest_neighbour"].metrics.get("nearest_neighbour.amd"),
        "near_copy_rate": result.checks["nearest_neighbour"].metrics.get("nearest_neighbour.near_copy_rate"),
        "fid": result.checks["fid"].metrics.get("fid.fid"),
        "scan_extracted": len(extraction_check.extracted_train_ids) if extraction_check else None,
        "scan_count_test": count.model_dump() if (count := extraction_check and extraction_check.count_test) else None,
        "scan_criterion": SCAN_CRITERION,
        "scan_policy": policy_digest(policy),
        # What the scan's triage sent to the attack: planted captions attacked, of how many prompts.
        "scan_planted_attacked": sum(any(i in planted_ids for i in a.item_ids) for a in attacked),
        "scan_attacked": len(attacked),
        "scan_triage": {"schedule": triage.schedule, "steps": triage.steps} if triage else None,
    }


def train_variant(variant: str, mitigation: str, base: Path, data: HospitalData, work: Path) -> Path:
    recipe = data.recipe
    config = hospital_train_config(recipe).model_copy(
        update={
            "method": variant,
            "learning_rate": recipe.learning_rate * LEARNING_RATE_FACTOR[variant],
            "mitigation": Mitigation(kind=mitigation),
        }
    )
    out = work / "finetune"
    if not (out / "model").is_dir():
        started = time.monotonic()

        def on_step(step: int, loss: float) -> None:
            if step % 250 == 0:
                print(
                    f"  {variant}/{mitigation} step {step} loss {loss:.4f} ({time.monotonic() - started:.0f} s)",
                    flush=True,
                )

        finetune(base, data.train, config, out=out, on_step=on_step)
    return out / "model"


def evaluate(
    name: str, model: Path, data: HospitalData, work: Path, *, generations: int, holdout: int, policy: Path = POLICY
):
    checkpoint = load_checkpoint(model)  # loaded once: the probes, the attack and the scan share it
    pipeline = checkpoint.pipeline
    planted, holdout_captions = detection_captions(data)
    started = time.monotonic()
    figures = {"variant": name, "model": str(model)}
    latent_size = latent_side(pipeline, data.recipe.image_size)
    figures["detection"] = detection(pipeline, planted, holdout_captions, latent_size)
    figures["extraction"] = extraction(
        pipeline, data, planted, holdout_captions[:holdout], generations=generations, image_size=data.recipe.image_size
    )
    figures |= scan_figures(checkpoint, data, work, policy=policy)
    figures["attacker"] = attacker_figures(pipeline, data, policy=policy)
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


def rescan(name: str, model: Path, data: HospitalData, work: Path, *, policy: Path) -> None:
    figures = json.loads((work / "figures.json").read_text())
    before = {key: figures.get(key) for key in ("verdict", "scan_extracted", "scan_criterion")}
    checkpoint = load_checkpoint(model)
    planted, holdout = detection_captions(data)
    latent_size = latent_side(checkpoint.pipeline, data.recipe.image_size)
    figures["detection"] = detection(checkpoint.pipeline, planted, holdout, latent_size, have=figures["detection"])
    figures |= scan_figures(checkpoint, data, work, policy=policy)
    figures["attacker"] = attacker_figures(checkpoint.pipeline, data, policy=policy)
    (work / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{name}: rescanned, {before['verdict']} ({before['scan_extracted']}) -> "
          f"{figures['verdict']} ({figures['scan_extracted']})")  # fmt: skip


def table_order(row: dict) -> tuple:
    """The base model, full fine-tuning (the unmitigated reference), then each method and its mitigations."""
    method, _, mitigation = row["variant"].partition("+")
    return method != "base", method != "full", method, mitigation


def table(results: list[dict], *, policy: Path = POLICY) -> str:
    lines = [
        "| variant | FID | AMD | near-copy rate | extracted (planted) | planted: other image "
        "| holdout: planted leaks | holdout: false | AUC S1 G4 | TPR@1%FPR S1 G4 | AUC S10 G4 | AUC S1 G1 "
        "| AUC / TPR@1%FPR T2 S1 G4 | scan verdict (extracted) | scan: planted attacked / attacked "
        "| scan: candidates meeting thresholds / of attacked -> copies at least "
        "| MIA AUC planted / generic | planted re-triggered |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    current = policy_digest(policy)
    stale = [row.get("scan_criterion") != SCAN_CRITERION or row.get("scan_policy") != current for row in results]
    for row, old in zip(results, stale, strict=True):
        d, e = row["detection"], extraction_counts(row["extraction"]["prompts"])
        lines.append(
            f"| {row['variant']} | {row['fid']:.2f} | {row['amd']:.4f} | {row['near_copy_rate']:.3f} "
            f"| {e['planted_extracted']}/{e['planted']} | {e['planted_other_image']}/{e['planted']} "
            f"| {e['holdout_planted_leaks']}/{e['holdout_prompts']} | {e['false_extractions']}/{e['holdout_prompts']} "
            f"| {d['S1G4']['auc']:.3f} | {d['S1G4']['tpr_at_1pct_fpr']:.3f} | {d['S10G4']['auc']:.3f} "
            f"| {d['S1G1']['auc']:.3f} | {_detection_cell(d.get('T2S1G4'))} "
            f"| {row['verdict']} ({row['scan_extracted']}){' *' if old else ''} "
            f"| {_attacked_cell(row)} | {_count_cell(row.get('scan_count_test'))} "
            f"| {_attacker_cells(row.get('attacker'))} |"
        )
    if any(stale):
        lines.append(
            "\n\\* scan columns from before the current extraction criterion or bench policy (rerun with --rescan)"
        )
    return "\n".join(lines) + "\n"


def _detection_cell(figures: dict | None) -> str:
    return "-" if figures is None else f"{figures['auc']:.3f} / {figures['tpr_at_1pct_fpr']:.3f}"


def _attacked_cell(row: dict) -> str:
    if "scan_attacked" not in row:
        return "-"
    return f"{row['scan_planted_attacked']}/{row['extraction']['planted']} / {row['scan_attacked']}"


def _count_cell(count: dict | None) -> str:
    """The scan's count test (metrics/copy_count.py): how many candidates met the per-candidate
    thresholds, of how many attacked prompts, and how many of them are copies at least."""
    if count is None:
        return "-"
    return f"{count['below']}/{count['candidates']} -> {count['copies_at_least']}"


def _attacker_cells(attacker: dict | None) -> str:
    if attacker is None:
        return "- | -"
    membership, again = attacker["membership"], attacker["retrigger"]
    return (
        f"{membership['auc_planted']:.3f} / {membership['auc_generic']:.3f} "
        f"| {again['retriggered_own_study']}/{again['planted']}"
    )


def model_of(variant: str, mitigation: str, models: Path, work: Path) -> Path | None:
    """The variant's model: shipped for full (the hospital model) and base, fine-tuned here otherwise."""
    if mitigation == "none" and variant in ("full", "base"):
        return models / ("hospital" if variant == "full" else "base")
    return work / "finetune" / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=DEMO_MODELS_DIR, help="Folder with base/ and hospital/.")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--variants", default="full")
    parser.add_argument("--mitigations", default="none")
    parser.add_argument("--generations", type=int, default=32, help="Generations per attacked prompt.")
    parser.add_argument("--holdout-prompts", type=int, default=24, help="Holdout captions attacked.")
    parser.add_argument("--policy", type=Path, default=POLICY, help="The policy of the scan-verdict column.")
    parser.add_argument("--rescan", action="store_true", help="Rerun only the scan columns of finished variants.")
    parser.add_argument(
        "--attacker", action="store_true", help="Only add the attacker columns to finished variants at hand."
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = data_for_model(args.models / "hospital", args.out / "data")
    for variant in args.variants.split(","):
        for mitigation in args.mitigations.split(","):
            if variant == "base" and mitigation != "none":
                continue  # the base model is not trained here: nothing to mitigate
            name = variant if mitigation == "none" else f"{variant}+{mitigation}"
            work = args.out / name
            model = model_of(variant, mitigation, args.models, work)
            if (work / "figures.json").is_file() and args.attacker:
                if model.is_dir():
                    figures = json.loads((work / "figures.json").read_text())
                    figures["attacker"] = attacker_figures(load_checkpoint(model).pipeline, data, policy=args.policy)
                    (work / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
                    print(f"{name}: attacker columns {json.dumps(figures['attacker'])}")
                continue
            if (work / "figures.json").is_file():
                if args.rescan:  # a fine-tune no longer at hand is retrained first (seeded: the same model)
                    if not model.is_dir():
                        model = train_variant(variant, mitigation, args.models / "base", data, work)
                    rescan(name, model, data, work, policy=args.policy)
                else:
                    print(f"{name}: done earlier")
                continue
            work.mkdir(parents=True, exist_ok=True)
            if not model.is_dir():
                model = train_variant(variant, mitigation, args.models / "base", data, work)
            figures = evaluate(
                name, model, data, work, generations=args.generations, holdout=args.holdout_prompts, policy=args.policy
            )
            (work / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
            print(f"{name}: {json.dumps({k: v for k, v in figures.items() if k != 'extraction'})}")
    results = [json.loads(path.read_text()) for path in args.out.glob("*/figures.json")]
    results.sort(key=table_order)
    text = table(results, policy=args.policy)
    (args.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
