"""The optional image-text alignment check (BioViL-T) on the generated sample and its captions."""

from __future__ import annotations

import torch

from memaudit.alignment.biovil_t import BioViLT
from memaudit.metrics.alignment import alignment_score
from memaudit.results.scan_result import CheckOutcome
from memaudit.scan.context import ScanContext
from memaudit.scan.image_set import ImageSet

ALIGNMENT_BATCH = 32  # images decoded and embedded at a time


def run_alignment(context: ScanContext, images: ImageSet, captions: list[str]) -> CheckOutcome:
    settings = context.policy.checks.alignment
    if not any(caption.strip() for caption in captions):
        return CheckOutcome(status="not_applicable", required=False, message="the images carry no report text")
    advance = context.progress.stage("BioViL-T alignment", len(images))
    model = BioViLT(
        settings.weights, allow_pickle=context.extractor_options.allow_pickle, device=context.extractor_options.device
    )
    embeddings = []
    for batch in images.batches(ALIGNMENT_BATCH):
        embeddings.append(model.embed_images(batch))
        advance(len(batch))
    score = alignment_score(torch.cat(embeddings), model.embed_reports(captions))
    return CheckOutcome(
        status="ok",
        required=settings.required,
        message=f"mean BioViL-T image-report cosine {score:.4g} over {len(images)} images",
        metrics={"alignment.score": score},
    )
