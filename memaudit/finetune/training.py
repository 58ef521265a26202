"""The training loop: SD noise-prediction MSE on a frozen VAE and text encoder, AdamW, seeded.

Every random draw of step k (batch, caption dropout, RWA words, noise, timesteps) comes from a
generator seeded by (seed, k), and checkpoints hold the trained tensors and the optimizer state,
so a run killed and resumed ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from memaudit.data import ImageCaptionDataset
from memaudit.finetune.config import TrainConfig
from memaudit.finetune.methods import AppliedMethod, load_trained_state, trained_state
from memaudit.finetune.mitigations import random_word_addition, threshold_keep, whole_words
from memaudit.metrics.noise_magnitude import step_magnitude
from memaudit.metrics.parameterization import as_epsilon
from memaudit.sampling.encode import encode_latents
from memaudit.sampling.seeds import sample_seed
from memaudit.sampling.text import encode_prompts

StepCallback = Callable[[int, float], None]


@dataclass
class TrainingLog:
    losses: list[float] = field(default_factory=list)
    dropped_samples: int = 0
    resumed_from: int | None = None


def config_digest(config: TrainConfig, data_digest: str) -> str:
    return hashlib.sha256((config.model_dump_json() + data_digest).encode()).hexdigest()


def _checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.glob("step-*.pt")) if folder.is_dir() else []


def _save_checkpoint(
    folder: Path, *, step: int, method: AppliedMethod, optimizer, log: TrainingLog, digest: str
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "digest": digest,
        "trained": trained_state(method),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "losses": torch.tensor(log.losses, dtype=torch.float64),
        "dropped": log.dropped_samples,
    }
    temporary = folder / f".step-{step:08d}.pt.tmp"
    torch.save(state, temporary)
    os.replace(temporary, folder / f"step-{step:08d}.pt")
    for old in _checkpoints(folder)[:-2]:  # keep the two newest
        old.unlink()


def _resume(folder: Path, *, method: AppliedMethod, optimizer, log: TrainingLog, digest: str) -> int:
    checkpoints = _checkpoints(folder)
    if not checkpoints:
        return 0
    from memaudit.errors import MemauditError

    state = torch.load(checkpoints[-1], map_location="cpu", weights_only=True)  # our own file, tensors only
    if state["digest"] != digest:
        raise MemauditError(f"{folder}: checkpoints from a different configuration or data set; use a new --out")
    load_trained_state(method, state["trained"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    log.losses = state["losses"].tolist()
    log.dropped_samples = int(state["dropped"])
    log.resumed_from = int(state["step"])
    return int(state["step"])


def train(
    pipeline,
    method: AppliedMethod,
    *,
    dataset: ImageCaptionDataset,
    config: TrainConfig,
    image_size: int,
    checkpoint_dir: Path,
    on_step: StepCallback | None = None,
    stop_after: int | None = None,
) -> TrainingLog:
    """Train ``method`` on ``dataset``; resumes from ``checkpoint_dir`` if it holds a checkpoint.

    ``stop_after`` ends this call after that many steps in total (the run can be resumed later).
    """
    unet = pipeline.unet
    device = unet.device
    digest = config_digest(config, dataset.digest)
    latents = encode_latents(pipeline, dataset, image_size=image_size)
    captions = dataset.captions
    empty = encode_prompts(pipeline, [""]).to(device).tokens  # UNet families: token states alone
    vocabulary = whole_words(pipeline.tokenizer) if config.mitigation.kind == "rwa" else []
    parameters = [p for _, p in sorted(method.trainable_parameters().items())]
    optimizer = (
        torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay) if parameters else None
    )
    log = TrainingLog()
    start = _resume(checkpoint_dir, method=method, optimizer=optimizer, log=log, digest=digest)
    unet.train(bool(parameters))
    last = config.steps if stop_after is None else min(config.steps, stop_after)
    for step in range(start, last):
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for micro in range(config.gradient_accumulation):
            generator = torch.Generator().manual_seed(
                sample_seed(config.seed, "train", step * config.gradient_accumulation + micro)
            )
            loss, dropped = _micro_step(
                pipeline,
                config,
                latents=latents,
                captions=captions,
                empty=empty,
                vocabulary=vocabulary,
                generator=generator,
                with_grad=optimizer is not None,
            )
            log.dropped_samples += dropped
            if optimizer is not None and loss.requires_grad:
                (loss / config.gradient_accumulation).backward()
            step_loss += float(loss.detach()) / config.gradient_accumulation
        if optimizer is not None:
            optimizer.step()
        log.losses.append(step_loss)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == last:
            _save_checkpoint(checkpoint_dir, step=step + 1, method=method, optimizer=optimizer, log=log, digest=digest)
        if on_step:
            on_step(step + 1, step_loss)
    unet.eval()
    return log


def _micro_step(pipeline, config: TrainConfig, *, latents, captions, empty, vocabulary, generator, with_grad: bool):
    unet, scheduler = pipeline.unet, pipeline.scheduler
    device = unet.device
    batch = torch.randint(len(captions), (config.batch_size,), generator=generator)
    texts = []
    for index in batch.tolist():
        caption = captions[index]
        if config.mitigation.kind == "rwa":
            caption = random_word_addition(
                caption,
                vocabulary,
                words=config.mitigation.rwa_words,
                probability=config.mitigation.rwa_probability,
                generator=generator,
            )
        if float(torch.rand(1, generator=generator)) < config.caption_dropout:
            caption = ""
        texts.append(caption)
    clean = latents[batch].to(device)
    noise = torch.randn(clean.shape, generator=generator).to(device)
    timesteps = torch.randint(scheduler.config.num_train_timesteps, (config.batch_size,), generator=generator).to(
        device
    )
    noisy = scheduler.add_noise(clean, noise, timesteps)
    with torch.no_grad():
        context = encode_prompts(pipeline, texts).to(device).tokens
    target = _training_target(scheduler, clean=clean, noise=noise, timesteps=timesteps)
    with torch.set_grad_enabled(with_grad):
        prediction = unet(noisy, timesteps, encoder_hidden_states=context).sample
    per_sample = ((prediction.float() - target.float()) ** 2).mean(dim=(1, 2, 3))
    keep = torch.ones_like(per_sample, dtype=torch.bool)
    mitigation = config.mitigation
    if mitigation.kind == "threshold":
        with torch.no_grad():
            unconditional = unet(noisy, timesteps, encoder_hidden_states=empty.expand(len(texts), -1, -1)).sample
        alpha = scheduler.alphas_cumprod.to(device)[timesteps]  # Wen's magnitude is the noise's
        kind = scheduler.config.prediction_type
        noises = [
            as_epsilon(out, noisy, alpha_bar=alpha, prediction_type=kind)
            for out in (prediction.detach(), unconditional)
        ]
        magnitudes = step_magnitude(*noises).cpu()
        keep = threshold_keep(
            magnitudes, threshold=mitigation.threshold, top_fraction=mitigation.effective_top_fraction
        ).to(per_sample.device)
    if not keep.any():
        return per_sample.sum() * 0.0, int((~keep).sum())
    return per_sample[keep].mean(), int((~keep).sum())


def _training_target(scheduler, *, clean: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet learns to predict, in the parameterization its scheduler config names."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(clean, noise, timesteps)
    if kind == "sample":
        return clean
    raise ValueError(f"unknown prediction type {kind!r} in the scheduler config")
