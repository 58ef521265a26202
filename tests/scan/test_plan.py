"""The scan plan: counts worked by hand, counts equal to what a real scan does, times from unit costs,
and `memaudit scan --plan` (table, JSON, nothing written, its refusals)."""

from __future__ import annotations

import json
import time

import psutil
import pytest
import yaml

from memaudit.cli import run
from memaudit.errors import ExitCode
from memaudit.policy.model import Policy
from memaudit.scan import ScanRequest, plan_request, run_scan
from memaudit.scan.plan import PlanSizes, UnitCosts, plan_scan
from memaudit.tiny.memorizer import build_memorizer

POLICY = """
name: plan-test
sampling: {seed: 0, scheduler: ddim, num_inference_steps: 4, guidance_scale: 2.0, batch_size: 5}
calibration: {small_holdout: warn}
checks:
  noise_magnitude: {steps: 2, generations: 3, calibration_quantile: 0.9}
  extraction: {generations: 6, prompts: all, verify_quantile: 0.05}
  nearest_neighbour: {extractor: pixels, generations_per_prompt: 2}
  membership: {enabled: true}
rules:
  no-extracted-images: {metric: extraction.extracted_count, at_most: 0}
"""

SIZES = PlanSizes(
    train_prompts=10,
    train_rows=12,
    train_images=11,
    train_items=12,
    holdout_prompts=7,
    holdout_rows=8,
    holdout_items=8,
    comparison_side=16,
)


def _policy(text: str = POLICY, **changes) -> Policy:
    content = yaml.safe_load(text)
    for dotted, value in changes.items():
        *path, key = dotted.split(".")
        node = content
        for part in path:
            node = node.setdefault(part, {})
        node[key] = value
    return Policy.model_validate(content)


def _stages(plan) -> dict:
    return {stage.stage: stage for stage in plan.stages}


def test_counts_worked_by_hand():
    stages = _stages(plan_scan(_policy(), SIZES, costs=None))
    # Triage: 10 + 7 prompts x 3 generations x 2 steps x 2 (conditional and unconditional).
    assert stages["triage"].unet_evaluations == 17 * 3 * 2 * 2
    # Extraction, every prompt: 10 x 6 generations x 4 steps x 2 (guided); 60 decodes; the holdout's 8 x 11
    # calibration pairs, then per prompt its 6 x 6 generation pairs and one candidate against 11 images.
    extraction = stages["extraction"]
    assert (extraction.unet_evaluations, extraction.vae_decodes) == (10 * 6 * 4 * 2, 60)
    assert extraction.tiled_l2_comparisons == 8 * 11 + 10 * (36 + 11)
    assert extraction.image_loads == 11 + 8
    # Membership (the default loss attack): 12 + 8 studies, each encoded and evaluated at 4 seeded noises.
    assert (stages["membership"].unet_evaluations, stages["membership"].vae_encodes) == (80, 20)
    assert stages["preflight"].image_loads == 12 + 8  # every image decoded once before any model work
    # Sample checks: 10 prompts x 2 images x 4 steps x 2; features of 12 + 8 real and 20 generated images.
    sample = stages["sample checks"]
    assert (sample.unet_evaluations, sample.vae_decodes, sample.feature_extractions) == (160, 20, 40)
    assert "retrigger" not in stages


def test_triage_attacks_the_expected_false_alarms_plus_the_budgets_and_says_the_bound():
    policy = _policy(**{"checks.extraction.prompts": "triage", "checks.extraction.random_prompts": 2})
    extraction = _stages(plan_scan(policy, SIZES, costs=None))["extraction"]
    # 10% false alarms of 10 prompts is 1 flagged, plus 2 sampled: 3 prompts attacked.
    assert extraction.unet_evaluations == 3 * 6 * 4 * 2
    assert "at most 10 if triage flags every prompt" in extraction.note
    capped = _policy(**{"checks.extraction.prompts": "triage", "checks.extraction.max_prompts": 2})
    assert _stages(plan_scan(capped, SIZES, costs=None))["extraction"].vae_decodes == 2 * 6


def test_fill_plans_the_whole_cap_and_says_how_many_go_by_score():
    policy = _policy(
        **{
            "checks.extraction.prompts": "triage",
            "checks.extraction.ranked_prompts": "fill",
            "checks.extraction.random_prompts": 2,
            "checks.extraction.max_prompts": 6,
        }
    )
    extraction = _stages(plan_scan(policy, SIZES, costs=None))["extraction"]
    # 1 expected false alarm, 2 sampled at random, the other 3 places of the cap by score: 6 prompts.
    assert extraction.unet_evaluations == 6 * 6 * 4 * 2
    assert "3 ranked (the rest of the cap), 2 sampled at random, capped at 6" in extraction.note


def test_unguided_sampling_costs_one_evaluation_per_step():
    stages = _stages(plan_scan(_policy(**{"sampling.guidance_scale": 1.0}), SIZES, costs=None))
    assert stages["extraction"].unet_evaluations == 10 * 6 * 4
    assert stages["triage"].unet_evaluations == 17 * 3 * 2 * 2  # the probe always compares both


def test_retrigger_counts_only_when_it_will_run():
    before_only = _policy(**{"checks.retrigger": {"enabled": True, "when": "before", "max_prompts": 2}})
    assert "retrigger" not in _stages(plan_scan(before_only, SIZES, costs=None))
    retrigger = _stages(plan_scan(before_only, SIZES, costs=None, with_before=True))["retrigger"]
    # 2 prompts x (4 noise scales + 1 ascent) x 6 generations x 4 steps x 2, plus 5 ascent steps of
    # 4 seeds x 2 evaluations, each forward with its backward (counted as two more).
    assert retrigger.unet_evaluations == 2 * (5 * 6 * 4 * 2 + 5 * 4 * 2 * 3)
    assert retrigger.vae_decodes == 2 * 5 * 6


def test_a_release_audit_generates_nothing():
    sizes = SIZES.model_copy(update={"released_images": 30})
    stages = _stages(plan_scan(_policy(), sizes, costs=None))
    assert set(stages) == {"preflight", "extraction", "sample checks"}
    assert stages["preflight"].image_loads == 12 + 8 + 30
    assert sum(stage.unet_evaluations + stage.vae_decodes for stage in stages.values()) == 0
    assert stages["extraction"].tiled_l2_comparisons == (8 + 30) * 11
    assert stages["sample checks"].feature_extractions == 12 + 8 + 30


def test_membership_attacks_and_reidentification_count_their_own_work():
    membership = {"enabled": True, "max_train": 5, "max_holdout": 4}
    evaluations = {
        attack: _stages(plan_scan(_policy(**{"checks.membership": membership | extra}), SIZES, costs=None))[
            "membership"
        ].unet_evaluations
        for attack, extra in (
            ("pia", {"attack": "pia"}), ("loss", {"attack": "loss", "draws": 3}),
            ("secmi", {"attack": "secmi", "timestep": 100, "interval": 20}),
        )
    }  # fmt: skip
    assert evaluations == {"pia": 2 * 9, "loss": 3 * 9, "secmi": (100 // 20 + 2) * 9}
    alone = {name: {"enabled": False} for name in ("nearest_neighbour", "alignment", "fid")}
    only_reid = _policy(**{f"checks.{name}": value for name, value in alone.items()},
                        **{"checks.reidentification": {"enabled": True, "weights": "v"}})  # fmt: skip
    sample = _stages(plan_scan(only_reid, SIZES, costs=None))["sample checks"]
    images = sample.vae_decodes  # the generated sample, each embedded by the verifier
    assert images > 0 and sample.feature_extractions == 12 + 8 + images


def test_time_is_the_counts_times_the_unit_costs():
    costs = UnitCosts(
        device="test",
        unet_evaluation=0.5,
        vae_decode=0.25,
        vae_encode=0.125,
        feature_extraction=2.0,
        tiled_l2_comparison=1e-3,
        image_load=0.01,
    )
    plan = plan_scan(_policy(), SIZES, costs=costs)
    extraction = _stages(plan)["extraction"]
    assert extraction.seconds == pytest.approx(480 * 0.5 + 60 * 0.25 + 558 * 1e-3 + 19 * 0.01)
    assert plan.seconds == pytest.approx(sum(stage.seconds for stage in plan.stages))
    unknown = plan_scan(_policy(), SIZES, costs=costs.model_copy(update={"feature_extraction": None}))
    assert _stages(unknown)["sample checks"].seconds is None and unknown.seconds is None
    assert _stages(unknown)["extraction"].seconds == pytest.approx(extraction.seconds)
    started = plan_scan(_policy(), SIZES, costs=costs, start_seconds=3.0)
    assert started.stages[0].stage == "start" and started.stages[0].seconds == 3.0  # measured, comes first
    preflight = _stages(plan)["preflight"].seconds  # the plan decodes every image too: that is in its start
    assert _stages(started)["preflight"].seconds == 0.0 and "timed in start" in _stages(started)["preflight"].note
    assert started.seconds == pytest.approx(plan.seconds - preflight + 3.0)
    assert "start" not in _stages(plan_scan(_policy(), SIZES, costs=None, start_seconds=3.0))  # no times: none


def test_disk_is_the_pixel_store_and_the_feature_cache():
    plan = plan_scan(_policy(), SIZES, costs=None, feature_dim=256)
    assert plan.disk_bytes == (11 + 8) * 3 * 16 * 16 + (12 + 8) * 256 * 4


@pytest.fixture(scope="module")
def memorizer(tiny_pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("plan")
    (root / "policy.yaml").write_text(POLICY)
    checkpoint, train, holdout, _ = build_memorizer(tiny_pipeline, root, planted=2, generic=4, holdout=6)
    return root, checkpoint, train, holdout


class _Counter:
    """Counts the samples the UNet evaluates and the images the VAE decodes and encodes."""

    def __init__(self, pipeline, monkeypatch):
        self.counts = {"unet": 0, "decode": 0, "encode": 0}
        for name, module, method in (("unet", pipeline.unet, "forward"), ("decode", pipeline.vae, "decode")):
            self._wrap(monkeypatch, name, module, method)
        self._wrap(monkeypatch, "encode", pipeline.vae, "encode")

    def _wrap(self, monkeypatch, name, module, method):
        original = getattr(module, method)

        def counted(sample, *args, **kwargs):
            self.counts[name] += sample.shape[0]
            return original(sample, *args, **kwargs)

        monkeypatch.setattr(module, method, counted)


def test_a_real_scan_does_exactly_what_its_plan_counts(memorizer, monkeypatch):
    root, checkpoint, train, holdout = memorizer
    request = ScanRequest(train=train, holdout=holdout, policy=root / "policy.yaml", model=checkpoint.source)
    plan = plan_request(request, checkpoint=checkpoint)
    counter = _Counter(checkpoint.pipeline, monkeypatch)
    run_scan(request, checkpoint=checkpoint)
    planned = {
        "unet": plan.unet_evaluations,
        "decode": sum(stage.vae_decodes for stage in plan.stages),
        "encode": sum(stage.vae_encodes for stage in plan.stages),
    }
    assert counter.counts == planned
    assert plan.costs.unet_evaluation > 0 and plan.costs.tiled_l2_comparison > 0 and plan.seconds > 0
    assert plan.stages[0].stage == "start" and plan.stages[0].seconds > 0


def _cli(capsys, *argv):
    code = run(["scan", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_prints_every_stage_and_writes_nothing(memorizer, tiny_folder, tmp_path, capsys):
    root, _, train, holdout = memorizer
    out = tmp_path / "out"
    argv = [tiny_folder, "--train", train, "--holdout", holdout, "--policy", root / "policy.yaml", "--out", out]
    code, text, err = _cli(capsys, *argv, "--plan", "--feature-cache", tmp_path / "cache")
    assert code == ExitCode.OK, err
    assert "plan of policy plan-test" in text
    assert all(stage in text for stage in ("triage", "extraction", "membership", "sample checks"))
    assert "total:" in text and "UNet evaluations" in text
    assert not out.exists()
    running = time.time() - psutil.Process().create_time()
    code, text, err = _cli(capsys, *argv, "--plan", "--json", "--feature-cache", tmp_path / "cache")
    plan = json.loads(text)
    assert code == ExitCode.OK
    assert [stage["stage"] for stage in plan["stages"]] == [
        "start", "preflight", "triage", "extraction", "membership", "sample checks"
    ]  # fmt: skip
    assert plan["stages"][0]["seconds"] >= running  # the start counts from when the process began
    captions = {json.loads(line)["text"] for line in (train / "metadata.jsonl").read_text().splitlines()}
    assert plan["sizes"]["train_prompts"] == len(captions) and plan["seconds"] > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--json"], "--json prints a plan: give it with --plan"),
        (["--plan", "--remediate-on-fail", "--base", "base"], "--plan plans a scan; it does not plan"),
    ],
)
def test_plan_option_misuse_exits_2_naming_it(memorizer, tiny_folder, tmp_path, capsys, extra, message):
    root, _, train, holdout = memorizer
    code, _, err = _cli(
        capsys, tiny_folder, "--train", train, "--holdout", holdout, "--policy", root / "policy.yaml",
        "--out", tmp_path / "out", *extra,
    )  # fmt: skip
    assert code == ExitCode.ERROR and message in err


def test_half_precision_applies_on_cuda_only():
    import torch

    from memaudit.scan.run import sampling_dtype

    assert sampling_dtype("float16", "cuda") == torch.float16
    assert sampling_dtype("bfloat16", "cuda:1") == torch.bfloat16
    assert sampling_dtype("float16", "cpu") == torch.float32
    assert sampling_dtype("float32", "cuda") == torch.float32
