"""The model's sample for the sample checks (nearest neighbour, FID, alignment), generated once.

Each batch of images is turned into what the checks read as it comes (extractor features, BioViL-T
embeddings) and then dropped, so memory holds one batch of images whatever the sample's size (at
512 px a float32 image is 3 MiB: a 10^4-image sample would be 30 GiB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice

import torch

from memaudit.errors import MemauditError
from memaudit.results.scan_result import CheckOutcome
from memaudit.sampling.seeds import sample_seed
from memaudit.scan import neighbour_check, reidentification_check
from memaudit.scan.alignment_check import ALIGNMENT_BATCH, AlignmentEmbedder, has_report_text, not_applicable
from memaudit.scan.context import ScanContext
from memaudit.scan.neighbour_check import generated_features
from memaudit.scan.shard import batch_unit


@dataclass(frozen=True)
class GeneratedSample:
    """Captions of the sample (one per image), its features (when nearest neighbour or FID run), and
    the alignment check's outcome (when it runs)."""

    captions: list[str]
    features: torch.Tensor | None
    feature_error: str | None = None  # why no features were extracted (e.g. the extractor has no weights)
    alignment: CheckOutcome | None = None
    reid: torch.Tensor | None = None  # verifier embeddings, when re-identification runs
    reid_error: str | None = None  # why there are none (e.g. the verifier cannot be loaded)


SAMPLE_CHUNK = 256  # images per unit of work a killed scan reads back


def generated_sample(context: ScanContext) -> GeneratedSample:
    """Images from the model (every distinct prompt, or a seeded sample) with the caption each was
    generated from; the extractor and the alignment model are built before the first image, so a
    missing one is named before the generation time is spent. The sample is made in chunks of whole
    generation, feature and alignment batches, each a unit of work a resumed scan reads back; ranks
    split the chunks by position (each reads back only its own), and a chunk's features and embeddings
    are the same however it was reached."""
    settings = context.policy.checks.nearest_neighbour
    groups = _sampled_groups(context)
    per_group = settings.generations_per_prompt
    captions = [group.caption for group in groups for _ in range(per_group)]
    feature_error = None
    if settings.enabled:
        try:
            _ = context.extractor
        except (MemauditError, ValueError) as error:
            feature_error = str(error)
    alignment, embedder = _alignment_start(context, captions)  # embedded within the generation stage
    extract = settings.enabled and feature_error is None
    reid, reid_error = _reid_start(context)
    if not extract and embedder is None and not reid:  # nothing would read the images
        return GeneratedSample(
            captions=captions, features=None, feature_error=feature_error, alignment=alignment, reid_error=reid_error
        )
    batches = [(neighbour_check.FEATURE_BATCH, per_group)] + ([(ALIGNMENT_BATCH, per_group)] if embedder else [])
    batches += [(context.policy.checks.reidentification.batch_size, per_group)] if reid else []
    unit = math.lcm(max(1, context.policy.sampling.batch_size), batch_unit(*batches))
    size = unit * max(1, SAMPLE_CHUNK // (unit * per_group))  # groups per chunk
    chunks = {f"sample-{first}-{size}": groups[first : first + size] for first in range(0, len(groups), size)}
    mine = context.shard.part(list(chunks))
    done = {name: context.work.get(name) for name in mine} if context.work else {}
    done = {
        name: value
        for name, value in done.items()
        if _complete(value, extract=extract, embedder=embedder, reid=reid, images=len(chunks[name]) * per_group)
    }
    todo = [name for name in mine if name not in done]
    stream = context.generate_groups(
        [group for name in todo for group in chunks[name]],
        per_group=per_group, stream="nearest-neighbour", label="generating for distances",
    )  # fmt: skip
    for name in todo:
        images = (images for _, images in islice(stream, len(chunks[name])))
        done[name] = _chunk_value(context, images, extract=extract, embedder=embedder, reid=reid)
        if context.work:
            context.work.put(name, done[name])
    values = [value for _, value in context.shard.gather([(name, done[name]) for name in mine])]
    if embedder is not None:
        alignment = _alignment_outcome(embedder, values, captions)
    return GeneratedSample(
        captions=captions,
        features=_stacked(values, "features") if extract else None,
        feature_error=feature_error,
        alignment=alignment,
        reid=_stacked(values, "reid") if reid else None,
        reid_error=reid_error,
    )


def _reid_start(context: ScanContext) -> tuple[bool, str | None]:
    """(whether to embed the sample for re-identification, why not when it cannot be)."""
    if not context.policy.checks.reidentification.enabled:
        return False, None
    try:
        reidentification_check.verifier(context)
    except (MemauditError, ValueError) as error:
        return False, str(error)
    return True, None


def _complete(value: dict | None, *, extract: bool, embedder, reid: bool, images: int) -> bool:
    """A saved chunk holds what this run needs (a run without the extractor's or BioViL-T's weights, or
    whose alignment failed, saved none: the chunk is made again)."""
    if value is None:
        return False
    parts = [value["features"]] if extract else []
    parts += [value["alignment"]] if embedder is not None else []
    parts += [value.get("reid")] if reid else []
    return all(part is not None and len(part["values"]) == images for part in parts)


def _alignment_outcome(embedder, values: list[dict], captions: list[str]) -> CheckOutcome:
    settings = embedder.context.policy.checks.alignment
    errors = [value["alignment_error"] for value in values if value["alignment_error"] is not None]
    try:
        if errors:
            raise ValueError(errors[0])
        return embedder.outcome(_stacked(values, "alignment"), captions)
    except (MemauditError, ValueError) as error:  # nearest neighbour and FID go on without it
        return CheckOutcome(status="error", required=settings.required, message=str(error))


def _sampled_groups(context: ScanContext):
    """Every distinct training prompt, or a seeded sample of ``max_prompts`` in their order."""
    groups = context.train_groups
    cap = context.policy.checks.nearest_neighbour.max_prompts
    if cap and cap < len(groups):
        generator = torch.Generator().manual_seed(sample_seed(context.policy.sampling.seed, "neighbour-sample", 0))
        groups = [groups[i] for i in sorted(torch.randperm(len(groups), generator=generator)[:cap])]
    return groups


def _chunk_value(context: ScanContext, groups_images, *, extract: bool, embedder, reid: bool) -> dict:
    """One chunk's features and alignment embeddings, as exact JSON (a chunk holds whole feature and
    alignment batches, so its images are batched as in the whole sample; memory holds one batch)."""
    features = _Batches(neighbour_check.FEATURE_BATCH, lambda images: generated_features(context, images))
    embeddings = _Batches(ALIGNMENT_BATCH, embedder.embed) if embedder is not None else None
    size = context.policy.checks.reidentification.batch_size
    identities = _Batches(size, lambda images: reidentification_check.embed(context, images)) if reid else None
    error = None
    for images in groups_images:
        if extract:
            features.add(images)
        if identities is not None:
            identities.add(images)
        if embeddings is not None and error is None:
            error = _guarded(embeddings.add, images)  # the alignment check fails, not the others
    if extract:
        features.add(None)
    if identities is not None:
        identities.add(None)
    if embeddings is not None and error is None:
        error = _guarded(embeddings.add, None)
    aligned = None if error or embeddings is None else _exact(embeddings.results)
    value = {"features": _exact(features.results), "alignment": aligned, "alignment_error": error}
    return value | ({"reid": _exact(identities.results)} if identities is not None else {})


class _Batches:
    """Images regrouped into batches of ``size`` for ``run``, whatever sizes they come in; ``add(None)``
    runs the last, partial batch. ``results`` holds what ``run`` gave, in order."""

    def __init__(self, size: int, run) -> None:
        self.size, self.run, self.results, self.pending = size, run, [], None

    def add(self, images: torch.Tensor | None) -> None:
        if images is not None:
            self.pending = images if self.pending is None else torch.cat([self.pending, images])
        while self.pending is not None and (len(self.pending) >= self.size or (images is None and len(self.pending))):
            self.results.append(self.run(self.pending[: self.size]))
            self.pending = self.pending[self.size :] if len(self.pending) > self.size else None


def _guarded(add, images) -> str | None:
    try:
        add(images)
    except (MemauditError, ValueError) as failure:
        return str(failure)
    return None


def _exact(parts: list[torch.Tensor]) -> dict | None:
    if not parts:
        return None
    values = torch.cat(parts)
    return {"dtype": str(values.dtype).removeprefix("torch."), "values": values.double().tolist()}


def _stacked(values: list[dict], key: str) -> torch.Tensor | None:
    parts = [value[key] for value in values if value[key] is not None]
    if not parts:
        return None
    return torch.cat([torch.tensor(p["values"], dtype=torch.float64).to(getattr(torch, p["dtype"])) for p in parts])


def _alignment_start(context: ScanContext, captions: list[str]):
    """(the outcome when it is already known, or the embedder that will produce it)."""
    settings = context.policy.checks.alignment
    if not settings.enabled:
        return None, None
    if not has_report_text(captions):
        return not_applicable(), None
    try:
        return None, AlignmentEmbedder(context)
    except (MemauditError, ValueError) as error:
        return CheckOutcome(status="error", required=settings.required, message=str(error)), None
