"""The ground-truth bench's attacker columns (DESIGN 3.8), for one model whose planted studies are known:
membership inference (PIA, uncalibrated: the column's attack since the table began; the attacks compared,
calibrated against the base, are bench/membership.py's) of planted and of generic training studies
against the holdout, and re-triggering of the planted captions (does a perturbed planted caption bring
its own study back?). Used by bench/ground_truth.py; the re-trigger settings come from the bench
policy's `retrigger` block.
"""

from __future__ import annotations

from pathlib import Path

from membership import scores  # this folder is on sys.path when a bench script runs

from memaudit.data import ImageCaptionDataset
from memaudit.metrics.roc import roc_auc, tpr_at_fpr
from memaudit.policy import load_policy
from memaudit.policy.checks import MembershipCheck
from memaudit.scan.context import ScanContext
from memaudit.scan.progress import SilentProgress
from memaudit.scan.retrigger_check import retrigger
from memaudit.tiny.hospital import HospitalData


def membership_figures(pipeline, data: HospitalData) -> dict:
    train, holdout = ImageCaptionDataset(data.train), ImageCaptionDataset(data.holdout)
    train_rows = train.first_rows("item")
    planted_ids = set(data.planted_ids)
    planted = [i for i, row in enumerate(train_rows) if train.records[row].id in planted_ids]
    generic = [i for i, row in enumerate(train_rows) if train.records[row].id not in planted_ids]
    common = dict(image_size=data.recipe.image_size, settings=MembershipCheck(attack="pia", timestep=200, p=4.0))
    member = scores(pipeline, train, train_rows, **common)
    unseen = scores(pipeline, holdout, holdout.first_rows("item"), **common)
    return {
        "auc_planted": roc_auc(member[planted], unseen),
        "tpr1_planted": tpr_at_fpr(member[planted], unseen, 0.01),
        "auc_generic": roc_auc(member[generic], unseen),
        "tpr1_generic": tpr_at_fpr(member[generic], unseen, 0.01),
    }


def retrigger_figures(pipeline, data: HospitalData, *, policy: Path, image_size: int) -> dict:
    context = ScanContext(
        policy=load_policy(policy).policy,
        train=ImageCaptionDataset(data.train),
        holdout=ImageCaptionDataset(data.holdout),
        progress=SilentProgress(),
        pipeline=pipeline,
        image_side=image_size,
    )
    planted = set(data.planted_captions)
    groups = [(group, "given") for group in context.train_groups if group.caption in planted]
    prompts = retrigger(context, groups).retrigger.prompts
    own = [
        any(a.extracted and a.nearest_train_id in context.ids(group.rows) for a in prompt.attempts)
        for prompt, (group, _) in zip(prompts, groups, strict=True)
    ]
    return {
        "planted": len(prompts),
        "retriggered_own_study": sum(own),
        "retriggered_any": sum(p.smallest_scale is not None for p in prompts),
        "smallest_scales": [p.smallest_scale for p in prompts],
    }


def attacker_figures(pipeline, data: HospitalData, *, policy: Path) -> dict:
    return {
        "membership": membership_figures(pipeline, data),
        "retrigger": retrigger_figures(pipeline, data, policy=policy, image_size=data.recipe.image_size),
    }
