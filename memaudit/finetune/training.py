"""The training loop: the family's denoising MSE (its own target: noise, velocity or x0 on a DDPM
schedule, the velocity e - x0 on rectified flow) on a frozen VAE and text encoders, AdamW, seeded.

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
from memaudit.denoiser import denoiser_for
from memaudit.finetune.config import TrainConfig
from memaudit.finetune.methods import AppliedMethod, load_trained_state, trained_state
from memaudit.finetune.mitigations import random_word_addition, threshold_keep, whole_words
from memaudit.metrics.noise_magnitude import step_magnitude
from memaudit.sampling.encode import encode_latents
from memaudit.sampling.seeds import sample_seed

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
    denoiser = denoiser_for(pipeline)
    network = denoiser.module
    digest = config_digest(config, dataset.digest)
    latents = encode_latents(denoiser, dataset, image_size=image_size)
    captions = dataset.captions
    empty = denoiser.unconditional()
    vocabulary = whole_words(denoiser.tokenizer) if config.mitigation.kind == "rwa" else []
    parameters = [p for _, p in sorted(method.trainable_parameters().items())]
    optimizer = (
        torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay) if parameters else None
    )
    log = TrainingLog()
    start = _resume(checkpoint_dir, method=method, optimizer=optimizer, log=log, digest=digest)
    network.train(bool(parameters))
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
                denoiser,
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
    network.eval()
    return log


def _micro_step(denoiser, config: TrainConfig, *, latents, captions, empty, vocabulary, generator, with_grad: bool):
    device = denoiser.device
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
    steps = denoiser.levels.num_train_timesteps
    timesteps = torch.randint(steps, (config.batch_size,), generator=generator).to(device)
    noisy = denoiser.add_noise(clean, noise, timesteps)
    with torch.no_grad():
        context = denoiser.encode_prompts(texts).to(device, denoiser.dtype)
    target = denoiser.levels.target(clean, noise, timesteps, prediction_type=denoiser.parameterization)
    with torch.set_grad_enabled(with_grad):
        prediction = denoiser.forward(noisy, timesteps, context)
    per_sample = ((prediction.float() - target.float()) ** 2).mean(dim=tuple(range(1, prediction.dim())))
    keep = torch.ones_like(per_sample, dtype=torch.bool)
    mitigation = config.mitigation
    if mitigation.kind == "threshold":
        with torch.no_grad():
            unconditional = denoiser.forward(noisy, timesteps, empty.broadcast(len(texts)).to(device, denoiser.dtype))
        # Wen's magnitude is the noise's, whatever the network predicts
        noises = [denoiser.epsilon_at(out, noisy, timesteps) for out in (prediction.detach(), unconditional)]
        magnitudes = step_magnitude(*noises).cpu()
        keep = threshold_keep(
            magnitudes, threshold=mitigation.threshold, top_fraction=mitigation.effective_top_fraction
        ).to(per_sample.device)
    if not keep.any():
        return per_sample.sum() * 0.0, int((~keep).sum())
    return per_sample[keep].mean(), int((~keep).sum())
