"""Driving a diffusers SD pipeline: prompt encoding, seeded batched generation, the noise probe."""
