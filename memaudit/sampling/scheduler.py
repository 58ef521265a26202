"""The sampler a policy asks for, built from the checkpoint's own noise schedule."""

from __future__ import annotations


def make_scheduler(pipeline, kind: str, num_inference_steps: int):
    """A fresh scheduler with its timesteps set: ``ddim`` or the checkpoint's own class."""
    from diffusers import DDIMScheduler

    if kind == "ddim":
        scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)
    elif kind == "checkpoint":
        scheduler = type(pipeline.scheduler).from_config(pipeline.scheduler.config)
    else:
        raise ValueError(f"unknown scheduler {kind!r}; expected 'ddim' or 'checkpoint'")
    scheduler.set_timesteps(num_inference_steps)
    return scheduler
