"""The unit costs of a scan on this device, from one real batch of each kind of work, and the sizes of
the inputs: what ``memaudit.scan.plan`` multiplies into a plan. Nothing here writes anything."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from memaudit.errors import MemauditError
from memaudit.metrics.extraction import chunk_size_for
from memaudit.metrics.tiled_l2 import tiled_l2
from memaudit.scan.context import ScanContext
from memaudit.scan.plan import PlanSizes, UnitCosts

TIMED_REPEATS = 2  # after one warm-up call


def plan_sizes(context: ScanContext, *, released_images: int = 0) -> PlanSizes:
    train, holdout = context.train, context.holdout
    return PlanSizes(
        train_prompts=len(context.train_groups),
        train_rows=len(train),
        train_images=len(set(train.image_digests)),
        train_items=len(set(train.item_digests)),
        holdout_prompts=len(context.holdout_groups),
        holdout_rows=len(holdout),
        holdout_items=len(set(holdout.item_digests)),
        comparison_side=context.compare_side,
        released_images=released_images,
    )


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds_each(work: Callable[[], object], units: int, device: torch.device) -> float:
    """Seconds per unit of ``work`` (which does ``units`` units), after one warm-up call."""
    work()
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(TIMED_REPEATS):
        work()
    _synchronize(device)
    return (time.perf_counter() - started) / (TIMED_REPEATS * units)


@torch.no_grad()
def measure_costs(context: ScanContext) -> UnitCosts:
    """Time one batch of UNet evaluations (guided as the policy samples), VAE decodes and encodes,
    feature extractions, tiled-L2 comparisons at the comparison side, and image loads."""
    if context.pipeline is None:
        return _release_costs(context)
    denoiser, sampling = context.pipeline, context.policy.sampling
    vae = denoiser.vae
    device, dtype = denoiser.device, denoiser.dtype
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    batch = max(1, sampling.batch_size) * (2 if sampling.guidance_scale > 1 else 1)
    side = context.latent_side
    latents = torch.randn(batch, *denoiser.latent_shape(side), device=device, dtype=dtype)
    embeddings = context.empty_embedding.broadcast(batch).to(device, dtype)
    timestep = torch.tensor(500, device=device)
    unet_cost = _seconds_each(lambda: denoiser.forward(latents, timestep, embeddings), batch, device)
    decode_batch = max(1, sampling.batch_size)
    decode = latents[:decode_batch]
    decode_cost = _seconds_each(lambda: denoiser.decode(decode), decode_batch, device)
    images = torch.rand(decode_batch, 3, context.image_side, context.image_side, device=device, dtype=vae.dtype)
    encode_cost = _seconds_each(lambda: denoiser.encode_images(images), decode_batch, device)
    peak = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    return UnitCosts(
        device=str(device),
        unet_evaluation=unet_cost,
        vae_decode=decode_cost,
        vae_encode=encode_cost,
        feature_extraction=_feature_cost(context),
        tiled_l2_comparison=_tiled_l2_cost(context),
        image_load=_image_load_cost(context),
        device_memory_bytes=peak,
    )


def _release_costs(context: ScanContext) -> UnitCosts:
    return UnitCosts(
        device="cpu",
        unet_evaluation=0.0,
        vae_decode=0.0,
        vae_encode=0.0,
        feature_extraction=_feature_cost(context),
        tiled_l2_comparison=_tiled_l2_cost(context),
        image_load=_image_load_cost(context),
    )


def _feature_cost(context: ScanContext) -> float | None:
    """Seconds per image through the nearest-neighbour extractor; None if it cannot be built (the
    plan then names the problem instead of a time)."""
    if not context.policy.checks.nearest_neighbour.enabled:
        return 0.0
    try:
        extractor = context.extractor
    except (MemauditError, ValueError, OSError):
        return None
    inputs = torch.stack([extractor.preprocess(torch.rand(3, context.image_side, context.image_side))] * 8)
    return _seconds_each(lambda: extractor.embed(inputs), len(inputs), torch.device(context.extractor_options.device))


def _tiled_l2_cost(context: ScanContext) -> float:
    """Seconds per image pair on the comparison device, at the chunk size the exact search uses."""
    side, device = context.compare_side, context.compare_device
    references = torch.rand(min(64, chunk_size_for(torch.empty(0, 3, side, side))), 3, side, side, device=device)
    queries = references[:8]
    tiles = context.policy.checks.extraction.tiles
    return _seconds_each(lambda: tiled_l2(queries, references, tiles=tiles), len(queries) * len(references), device)


def _image_load_cost(context: ScanContext, samples: int = 16) -> float:
    """Seconds to decode one training image and bring it to the comparison side: ``samples`` different
    images spread over the set, each read once after one warm-up read (the same few images read again
    and again ran faster than a pass over the data)."""
    count = len(context.train)
    if not count:
        return 0.0
    rows = list(range(0, count, max(1, count // samples)))[:samples]
    context.train_image(rows[0])
    started = time.perf_counter()
    for row in rows:
        context.train_image(row)
    return (time.perf_counter() - started) / len(rows)
