"""What a scan will cost, before it starts (``memaudit scan --plan``; DESIGN 9).

Per stage, the counts follow from the policy and the sizes of the inputs alone: UNet sample
evaluations (a guided denoising step is two, conditional and unconditional), VAE decodes and encodes,
feature extractions, tiled-L2 image comparisons and image loads. Where a count depends on what the
scan will find (how many prompts triage flags, how many the re-trigger check tests), the plan assumes
a model that memorizes nothing (triage flags its false-alarm share, 1 - calibration_quantile, of the
prompts) and its note gives the bound when every prompt is flagged. Times are those counts times the
unit costs measured on the device with one real batch (``memaudit.scan.plan_costs``).
"""

from __future__ import annotations

import math

import torch

from memaudit.metrics.extraction import chunk_size_for
from memaudit.metrics.tiled_l2 import BATCH_BYTES
from memaudit.metrics.triage import DETECTORS
from memaudit.policy import Policy
from memaudit.scan.context import PROMPT_CHUNK
from memaudit.scan.plan_records import PlanSizes, ScanPlan, StagePlan, UnitCosts

__all__ = ["PlanSizes", "ScanPlan", "StagePlan", "UnitCosts", "plan_scan"]

ASCENT_SEEDS = 4  # latents the re-trigger ascent averages over (memaudit.scan.retrigger_check)
BACKWARD_COST = 2  # a backward pass counted as two forward evaluations
EMBEDDING_BYTES = 77 * 768 * 4  # one CLIP-L prompt embedding, float32
DEFAULT_FEATURE_DIM = 1024  # the chest X-ray DenseNet's, when the extractor cannot be built to ask
ALIGNMENT_DIM = 128  # BioViL-T's projected image embedding, float64


def expected_attacked(policy: Policy, sizes: PlanSizes) -> tuple[int, int, str]:
    """(prompts attacked on a model that memorizes nothing, at most, how they are chosen)."""
    extraction, triage = policy.checks.extraction, policy.checks.noise_magnitude
    prompts = sizes.train_prompts
    cap = extraction.max_prompts or prompts
    if extraction.prompts == "all":
        return min(prompts, cap), min(prompts, cap), "every distinct training prompt"
    flagged = math.ceil((1 - triage.calibration_quantile) * prompts) if triage.enabled else 0
    sampled = min(extraction.random_prompts, cap)
    ranked = extraction.ranked_budget(flagged)
    expected = min(prompts, cap, flagged + ranked + sampled)
    most = min(prompts, cap) if triage.enabled else expected
    how = (
        f"~{flagged:,} flagged (the false-alarm share; a fine-tune's training prompts often score higher), "
        f"{ranked:,} ranked{' (the rest of the cap)' if extraction.ranked_prompts == 'fill' else ''}, "
        f"{sampled} sampled at random"
    )
    how += f", capped at {cap:,}" if extraction.max_prompts else f"; at most {most:,} if triage flags every prompt"
    return expected, most, how


def membership_evaluations(settings) -> int:
    """Denoiser evaluations per study of the policy's membership attack."""
    if settings.attack == "loss":
        return settings.draws
    if settings.attack == "secmi":
        return settings.timestep // settings.interval + 2
    return 2  # pia


def _generation_stages(
    policy: Policy, sizes: PlanSizes, *, with_before: bool, with_reference: bool = False
) -> list[StagePlan]:
    checks, sampling = policy.checks, policy.sampling
    guided = 2 if sampling.guidance_scale > 1 else 1
    per_image = sampling.num_inference_steps * guided
    stages = []
    if checks.noise_magnitude.enabled:
        triage = checks.noise_magnitude
        prompts = sizes.train_prompts + sizes.holdout_prompts
        passes = DETECTORS[triage.detector].unet_passes(triage.steps)
        note = f"{triage.detector}: {prompts:,} prompts x {triage.generations} generations x {passes} evaluations"
        stages.append(StagePlan(stage="triage", unet_evaluations=prompts * triage.generations * passes, note=note))
    if checks.extraction.enabled:
        generations = checks.extraction.generations
        attacked, _, how = expected_attacked(policy, sizes)
        stages.append(
            StagePlan(
                stage="extraction",
                unet_evaluations=attacked * generations * per_image,
                vae_decodes=attacked * generations,
                tiled_l2_comparisons=sizes.holdout_rows * sizes.train_images
                + attacked * (generations * generations + sizes.train_images),
                image_loads=sizes.train_images + sizes.holdout_rows,
                note=f"{attacked:,} prompts x {generations} generations: {how}",
            )
        )
    if checks.membership.enabled:
        studies = min(sizes.train_items, checks.membership.max_train or sizes.train_items)
        studies += min(sizes.holdout_items, checks.membership.max_holdout or sizes.holdout_items)
        models = 2 if with_reference else 1  # calibrated: every study scored by the base as well
        note = f"{studies:,} studies" + (", scored by the model and by its base" if with_reference else "")
        each = membership_evaluations(checks.membership)
        stages.append(
            StagePlan(
                stage="membership", unet_evaluations=each * studies * models, vae_encodes=studies * models, note=note
            )
        )
    if _samples(policy):
        stages.append(_sample_stage(policy, sizes, images=_sample_size(policy, sizes), per_image=per_image))
    if checks.retrigger.enabled and (with_before or checks.retrigger.when == "always"):
        retrigger = checks.retrigger
        generations = retrigger.generations or checks.extraction.generations
        attempts = len(retrigger.scales) + (retrigger.ascent_radius is not None)
        ascent = retrigger.ascent_steps * ASCENT_SEEDS * 2 * (1 + BACKWARD_COST) if retrigger.ascent_radius else 0
        prompts = retrigger.max_prompts
        stages.append(
            StagePlan(
                stage="retrigger",
                unet_evaluations=prompts * (attempts * generations * per_image + ascent),
                vae_decodes=prompts * attempts * generations,
                tiled_l2_comparisons=prompts * attempts * (generations * generations + sizes.train_images),
                note=f"at most {prompts} extracted or flagged prompts x {attempts} perturbations (0 if none are found)",
            )
        )
    return stages


def _samples(policy: Policy) -> bool:
    """Whether any check reads a sample of images (generated, or the release)."""
    checks = policy.checks
    return checks.nearest_neighbour.enabled or checks.alignment.enabled or checks.reidentification.enabled


def _sample_size(policy: Policy, sizes: PlanSizes) -> int:
    settings = policy.checks.nearest_neighbour
    prompts = min(sizes.train_prompts, settings.max_prompts or sizes.train_prompts)
    return prompts * settings.generations_per_prompt


def _sample_stage(policy: Policy, sizes: PlanSizes, *, images: int, per_image: int) -> StagePlan:
    """Nearest neighbour, FID and alignment on one sample: generated (model) or released (--images)."""
    checks = policy.checks
    generated = sizes.released_images == 0
    features = sizes.train_rows + sizes.holdout_rows + images if checks.nearest_neighbour.enabled else 0
    alignment = 2 * images if checks.alignment.enabled else 0  # BioViL-T: image and report embeddings
    # the verifier embeds the sample, the training and the holdout images (timed as a feature extraction)
    verifier = sizes.train_rows + sizes.holdout_rows + images if checks.reidentification.enabled else 0
    return StagePlan(
        stage="sample checks",
        unet_evaluations=images * per_image if generated else 0,
        vae_decodes=images if generated else 0,
        feature_extractions=features + alignment + verifier,
        image_loads=sizes.train_rows + sizes.holdout_rows if checks.nearest_neighbour.enabled else 0,
        note=f"{images:,} {'generated' if generated else 'released'} images; features of every training and "
        "holdout image (cached ones are read, not recomputed)",
    )


def _release_stages(policy: Policy, sizes: PlanSizes) -> list[StagePlan]:
    stages = []
    if policy.checks.extraction.enabled:
        comparisons = (sizes.holdout_rows + sizes.released_images) * sizes.train_images
        loads = sizes.train_images + sizes.holdout_rows + sizes.released_images
        stages.append(StagePlan(stage="extraction", tiled_l2_comparisons=comparisons, image_loads=loads))
    if _samples(policy):
        stages.append(_sample_stage(policy, sizes, images=sizes.released_images, per_image=0))
    return stages


def _host_memory(policy: Policy, sizes: PlanSizes, *, model_bytes: int, feature_dim: int) -> int:
    """Model weights plus the largest of the stages' buffers (an estimate; activations come on top)."""
    image = 3 * sizes.comparison_side**2 * 4
    rows = chunk_size_for(torch.empty(0, 3, sizes.comparison_side, sizes.comparison_side))
    chunk = rows * 2 * image  # float64
    sample = sizes.released_images or _sample_size(policy, sizes)
    generations = policy.checks.extraction.generations
    buffers = [
        2 * chunk + 2 * BATCH_BYTES + 2 * 8 * rows**2,  # tiled L2: two chunks, batched tile products and norms
        generations * image + 8 * generations**2,  # one attacked prompt's images and their distances
        PROMPT_CHUNK * EMBEDDING_BYTES,  # triage and membership: one chunk of prompt embeddings
        # sample checks: one batch of images, the features of every image, BioViL-T's 128 per image
        32 * image
        + (sizes.train_rows + sizes.holdout_rows + sample) * feature_dim * 4
        + (sample * ALIGNMENT_DIM * 8 if policy.checks.alignment.enabled else 0),
    ]
    return model_bytes + max(buffers)


def plan_scan(
    policy: Policy,
    sizes: PlanSizes,
    *,
    costs: UnitCosts | None,
    model_bytes: int = 0,
    feature_dim: int = DEFAULT_FEATURE_DIM,
    with_before: bool = False,
    with_reference: bool = False,
    start_seconds: float | None = None,
) -> ScanPlan:
    """The plan of ``policy`` on inputs of ``sizes`` (``with_before``: given a previous scan to re-trigger;
    ``with_reference``: membership also scored by the base); with ``costs``, the time of each stage and in
    all; ``start_seconds``: the start, as measured."""
    rows = sizes.train_rows + sizes.holdout_rows + sizes.released_images
    stages = [StagePlan(stage="preflight", image_loads=rows, note=f"every one of {rows:,} images decoded once")]
    if sizes.released_images:
        stages += _release_stages(policy, sizes)
    else:
        stages += _generation_stages(policy, sizes, with_before=with_before, with_reference=with_reference)
    if costs is not None:
        stages = [stage.model_copy(update={"seconds": _seconds(stage, costs)}) for stage in stages]
        if start_seconds is not None:  # the plan ran the preflight too: its time is in the start
            preflight = stages[0]
            stages[0] = preflight.model_copy(update={"seconds": 0.0, "note": f"{preflight.note} (timed in start)"})
            note = "imports, manifests, digests, the preflight, loading the model: measured while planning"
            stages.insert(0, StagePlan(stage="start", seconds=start_seconds, note=note))
    pixels = (sizes.train_images + sizes.holdout_rows) * 3 * sizes.comparison_side**2
    features = 0
    if policy.checks.nearest_neighbour.enabled:
        features = (sizes.train_rows + sizes.holdout_rows) * feature_dim * 4
    timed = [stage.seconds for stage in stages]
    return ScanPlan(
        policy=policy.name,
        sizes=sizes,
        stages=stages,
        disk_bytes=pixels + features,
        host_memory_bytes=_host_memory(policy, sizes, model_bytes=model_bytes, feature_dim=feature_dim),
        costs=costs,
        seconds=sum(timed) if costs is not None and None not in timed else None,
    )


def _seconds(stage: StagePlan, costs: UnitCosts) -> float | None:
    if stage.feature_extractions and costs.feature_extraction is None:
        return None
    return (
        stage.unet_evaluations * costs.unet_evaluation
        + stage.vae_decodes * costs.vae_decode
        + stage.vae_encodes * costs.vae_encode
        + stage.feature_extractions * (costs.feature_extraction or 0.0)
        + stage.tiled_l2_comparisons * costs.tiled_l2_comparison
        + stage.image_loads * costs.image_load
    )
