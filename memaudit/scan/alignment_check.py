"""The optional image-text alignment check (BioViL-T) on the generated sample and its captions.

Images are embedded a batch at a time as they come (``AlignmentEmbedder``), so neither a release nor
a generated sample is ever held whole: only its 128-number embeddings are.
"""

from __future__ import annotations

import torch

from memaudit.alignment.biovil_t import BioViLT
from memaudit.metrics.alignment import alignment_score
from memaudit.results.scan_result import CheckOutcome
from memaudit.scan.context import ScanContext
from memaudit.scan.image_set import ImageSet

ALIGNMENT_BATCH = 32  # images decoded and embedded at a time


def has_report_text(captions: list[str]) -> bool:
    return any(caption.strip() for caption in captions)


class AlignmentEmbedder:
    """BioViL-T image embeddings of images handed over in batches; the images themselves are not kept.
    Building it loads the model, so a missing or refused weights file is named before any image."""

    def __init__(self, context: ScanContext) -> None:
        options = context.extractor_options
        self.context = context
        self.model = BioViLT(
            context.policy.checks.alignment.weights, allow_pickle=options.allow_pickle, device=options.device
        )

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, 128]`` float64 image embeddings, ``ALIGNMENT_BATCH`` images at a time."""
        return torch.cat([self.model.embed_images(batch) for batch in images.split(ALIGNMENT_BATCH)])

    def outcome(self, image_embeddings: torch.Tensor, captions: list[str]) -> CheckOutcome:
        """The check on every image's embedding (all shards' when sharded) and the captions, in order."""
        score = alignment_score(image_embeddings, self.model.embed_reports(captions))
        return CheckOutcome(
            status="ok",
            required=self.context.policy.checks.alignment.required,
            message=f"mean BioViL-T image-report cosine {score:.4g} over {len(image_embeddings)} images",
            metrics={"alignment.score": score},
        )


def not_applicable() -> CheckOutcome:
    return CheckOutcome(status="not_applicable", required=False, message="the images carry no report text")


def run_alignment(context: ScanContext, images: ImageSet, captions: list[str]) -> CheckOutcome:
    if not has_report_text(captions):
        return not_applicable()
    embedder = AlignmentEmbedder(context)
    advance = context.progress.stage("BioViL-T alignment", len(images))
    parts = []
    for batch in images.batches(ALIGNMENT_BATCH):
        parts.append(embedder.embed(batch))
        advance(len(batch))
    return embedder.outcome(torch.cat(parts), captions)
