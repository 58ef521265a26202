"""How identifiable the phantom patients are: a verifier trained on phantom patients with several studies,
then asked to re-identify new studies of training patients against new studies of unseen ones.

    .venv/bin/python bench/reid_phantoms.py [--side 32] [--patients 200] [--studies 4] [--steps 1500] \
        [--frequent 0 --frequent-studies 200] [--hard-neighbours 10] [--out build/reid-phantoms]

Prints and writes (OUT/figures.json): the verifier's pair AUC on unseen patients (two studies of one patient
against two patients), rank-1 identification (is the training image nearest to a new study, by the
verifier's embedding, one of that study's own patient?), and the re-identification distance 1 - P(same
patient) that the scan's check reads, for new studies of 40 training patients and for 40 unseen patients'
studies (its null): the check can name a patient only where the first sit below the second.
`--frequent F` adds F longitudinal patients with `--frequent-studies` studies each to the training set (the
patients a generative model would learn) and asks about new studies of those instead; `--hard-neighbours K`
trains the verifier with look-alike pairs (`memaudit reid train --hard-neighbours`). The scan's patient count
test (`memaudit/metrics/patient_counts.py`, at 0.005) is run on the new studies and on the unseen ones, its null
`--null` images of further unseen patients; `--new-studies S` new studies per longitudinal patient.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import memaudit  # noqa: F401  (runtime guards)
from memaudit.data import ImageCaptionDataset
from memaudit.metrics.patient_counts import named_by_count, patient_counts
from memaudit.metrics.reidentification import resemblance
from memaudit.metrics.roc import roc_auc
from memaudit.phantoms.identity import write_identity_cohort, write_longitudinal_cohort
from memaudit.reid.training import ReidTraining, train_verifier
from memaudit.reid.weights import embed_images, load_verifier

COUNT_LEVEL = 0.005  # the count test's half of the shipped policies' family level 0.01
KNOWN = 40  # training patients with a new study, and unseen patients scored as the null


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=32)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--frequent", type=int, default=0, help="Longitudinal training patients (0: none).")
    parser.add_argument("--frequent-studies", type=int, default=200)
    parser.add_argument("--hard-neighbours", type=int, default=ReidTraining.hard_neighbours)
    parser.add_argument("--new-studies", type=int, default=0, help="New studies per longitudinal patient.")
    parser.add_argument("--null", type=int, default=300, help="Images of further unseen patients: the count's null.")
    parser.add_argument("--out", type=Path, default=Path("build/reid-phantoms"))
    args = parser.parse_args()
    side, out = args.side, args.out
    common = {"seed": 0, "size": side}
    train = ImageCaptionDataset(_training_set(out / "train", args, common))
    holdout = ImageCaptionDataset(
        write_identity_cohort(out / "holdout", patients=KNOWN, studies=3, first_patient=5000, **common)
    )
    known = {"patients": KNOWN, "studies": 1, "first_study": 9}  # one new study of each of the first patients
    if args.frequent:  # new studies of the longitudinal patients, KNOWN in all
        studies = args.new_studies or -(-KNOWN // args.frequent)
        known = {"patients": args.frequent, "studies": studies, "first_study": args.frequent_studies}
    new = ImageCaptionDataset(write_identity_cohort(out / "new", **known, **common))
    unseen = ImageCaptionDataset(write_identity_cohort(
        out / "unseen", patients=len(new.records), studies=1, first_patient=9000, first_study=9, **common
    ))  # fmt: skip
    count_null = ImageCaptionDataset(
        write_identity_cohort(out / "null", patients=args.null // 3, studies=3, first_patient=6000, **common)
    )
    settings = ReidTraining(
        input_side=side, embedding_dim=32, width=16, steps=args.steps, evaluate_every=100, patience=10,
        hard_neighbours=args.hard_neighbours,
    )  # fmt: skip
    started = time.monotonic()
    record = train_verifier(train, holdout, settings, out=out / "verifier", on_evaluation=print)
    seconds = time.monotonic() - started
    network = load_verifier(out / "verifier").network

    def embedded(dataset: ImageCaptionDataset) -> torch.Tensor:
        return embed_images(network, dataset.load_images(size=side, channels=1))

    training = embedded(train)
    patients = [record.patient_id for record in train.records]
    found = resemblance(embedded(new), training, network.pair_logits, top_k=args.top_k)
    null = resemblance(embedded(unseen), training, network.pair_logits, top_k=args.top_k)
    right = sum(patients[int(row)] == own.patient_id for row, own in zip(found.train_rows, new.records, strict=True))
    drawn_null = [patients[int(row)] for row in resemblance(embedded(count_null), training, network.pair_logits,
                                                          top_k=args.top_k).train_rows]  # fmt: skip

    def counted(scored) -> list[str]:  # the patients the count test names, at the check's half of 1%
        counts = patient_counts([patients[int(row)] for row in scored.train_rows], drawn_null)
        return [count.patient for count in named_by_count(counts, COUNT_LEVEL)[0]]

    learned = {record.patient_id for record in new.records}
    named_from_new = set(counted(found))
    figures = {
        "side": side,
        "training_patients": args.patients,
        "studies_per_patient": args.studies,
        "frequent_patients": args.frequent,
        "frequent_studies": args.frequent_studies if args.frequent else 0,
        "hard_neighbours": args.hard_neighbours,
        "steps_trained": record.evaluations[-1]["step"] if record.evaluations else 0,
        "seconds": round(seconds, 1),
        "pair_auc_unseen_patients": record.best_auc,
        "rank1_identified": f"{right}/{len(new.records)}",
        "distance_new_studies_median": float(found.distances.median()),
        "distance_unseen_median": float(null.distances.median()),
        "distance_unseen_min": float(null.distances.min()),
        "new_studies_below_every_unseen": int((found.distances < null.distances.min()).sum()),
        "separation_auc": roc_auc(-found.distances, -null.distances),
        "count_test_null_images": len(drawn_null),
        "count_test_named_learned": f"{len(named_from_new & learned)}/{len(learned)}",
        "count_test_named_other": len(named_from_new - learned),
        "count_test_named_from_unseen": len(counted(null)),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


def _training_set(folder: Path, args, common: dict) -> Path:
    """``args.patients`` patients with ``args.studies`` studies each, after ``args.frequent`` with
    ``args.frequent_studies`` each (patients 0 .. frequent - 1), in one manifest."""
    if not args.frequent:
        return write_identity_cohort(folder, patients=args.patients, studies=args.studies, **common)
    return write_longitudinal_cohort(
        folder, frequent=args.frequent, frequent_studies=args.frequent_studies, patients=args.patients,
        studies=args.studies, **common,
    )  # fmt: skip


if __name__ == "__main__":
    main()
