"""A tiny remediation job shared by the remediate and gate tests: a random-weight model (it memorizes
nothing, so its scan passes), a small memorizer data set and a policy with a minimal search."""

from __future__ import annotations

import pytest

from memaudit.tiny.memorizer import build_memorizer

POLICY = """
name: remediation-test
sampling: {seed: 0, scheduler: ddim, num_inference_steps: 4, guidance_scale: 1.0, batch_size: 16}
calibration: {small_holdout: warn}
checks:
  noise_magnitude: {steps: 1, generations: 1, calibration_quantile: 0.99}
  extraction: {generations: 4, prompts: triage, random_prompts: 1, verify_quantile: 0.01}
  nearest_neighbour: {extractor: pixels, generations_per_prompt: 1, near_copy_quantile: 0.05}
  fid: {required: true}
rules:
  no-extracted-images: {metric: extraction.extracted_count, at_most: 0, severity: fail}
remediation:
  spaces: [svdiff, difffit]
  trials: 4
  population_size: 2
  memorization_set_size: 3
  memorization_repeats: 2
  proxy_fraction: 0.5
  inner_steps: 2
  retrain_steps: 2
  batch_size: 2
  fid_prompts: 3
"""


@pytest.fixture(scope="module")
def job(tiny_pipeline, tiny_folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("remediate")
    _, train, holdout, _ = build_memorizer(tiny_pipeline, root / "data", planted=2, generic=4, holdout=6)
    (root / "policy.yaml").write_text(POLICY)
    return root, tiny_folder, train, holdout


def remediate_argv(job, out, *extra):
    root, model, train, holdout = job
    return [
        "remediate",
        str(model),
        "--base",
        str(model),
        "--train",
        str(train),
        "--holdout",
        str(holdout),
        "--policy",
        str(root / "policy.yaml"),
        "--out",
        str(out),
        "--feature-cache",
        str(root / "cache"),
        "--search-anyway",  # the random-weight tiny model memorizes nothing: its scan passes
        *map(str, extra),
    ]
