"""The re-trigger check on closed-form memorizers: one whose copy survives a small change of the prompt
embedding (a copy only hidden behind the exact prompt comes back), and the exact one (it does not)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from memaudit.data import ImageCaptionDataset
from memaudit.errors import PolicyError
from memaudit.policy import load_policy
from memaudit.scan.context import ScanContext
from memaudit.scan.extraction_check import run_extraction
from memaudit.scan.progress import SilentProgress
from memaudit.scan.retrigger_check import prompts_to_test, run_retrigger
from memaudit.tiny.memorizer import ClosedFormUNet, build_memorizer, with_unet
from tests.scan.recording_progress import RecordingProgress

POLICY = """
name: retrigger-test
sampling: {{seed: 0, scheduler: ddim, num_inference_steps: 10, guidance_scale: 1.0, batch_size: 8}}
calibration: {{small_holdout: warn}}
checks:
  extraction: {{generations: 4, min_clique: 3, prompts: all}}
  retrigger: {retrigger}
  nearest_neighbour: {{extractor: pixels}}
rules:
  retriggered: {{metric: retrigger.retriggered_count, at_most: 0}}
"""


class TolerantUNet(ClosedFormUNet):
    """Reproduces a planted latent for any embedding within ``tolerance`` x rms of the planted one."""

    tolerance = 0.03  # the two planted captions' embeddings differ by 0.07 x rms

    def forward(self, sample, timestep, encoder_hidden_states):
        alpha = self.alphas_cumprod[int(timestep)]
        x = sample.double()
        x0 = alpha.sqrt() * x
        for index, embedding in enumerate(encoder_hidden_states):
            for planted_embedding, latent in self.planted:
                gap = (embedding - planted_embedding).double().pow(2).mean().sqrt()
                if gap <= self.tolerance * planted_embedding.double().pow(2).mean().sqrt():
                    x0[index] = latent.double()
        return SimpleNamespace(sample=((x - alpha.sqrt() * x0) / (1 - alpha).sqrt()).float())


@pytest.fixture(scope="module")
def memorizers(tiny_pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("retrigger")
    checkpoint, train, holdout, planted = build_memorizer(tiny_pipeline, root, planted=2, generic=2, holdout=8)
    exact = checkpoint.pipeline
    tolerant_unet = TolerantUNet(exact.unet.config, exact.unet.alphas_cumprod, exact.unet.planted)
    return root, train, holdout, planted, {"exact": exact, "tolerant": with_unet(exact, tolerant_unet)}


def _context(memorizers, which: str, retrigger: str):
    root, train, holdout, _, pipelines = memorizers
    path = root / f"policy-{which}-{abs(hash(retrigger))}.yaml"
    path.write_text(POLICY.format(retrigger=retrigger))
    return ScanContext(
        policy=load_policy(path).policy,
        train=ImageCaptionDataset(train),
        holdout=ImageCaptionDataset(holdout),
        progress=SilentProgress(),
        pipeline=pipelines[which],
        image_side=16,
    )


def _run(memorizers, which: str, retrigger: str = "{enabled: true, scales: [0.01, 0.3], ascent_radius: null}"):
    context = _context(memorizers, which, retrigger)
    extraction = run_extraction(context, [(group, "all") for group in context.train_groups])
    return context, extraction, run_retrigger(context, {"extraction": extraction}, None)


def test_a_copy_that_survives_small_perturbations_is_found_at_the_smallest_scale(memorizers):
    planted = memorizers[3]
    _, extraction, outcome = _run(memorizers, "tolerant")
    assert extraction.extraction.extracted_train_ids == planted  # both planted studies, unperturbed
    prompts = outcome.retrigger.prompts
    assert [p.item_ids for p in prompts] == [[item] for item in planted]
    for prompt in prompts:
        assert prompt.source == "extracted" and prompt.smallest_scale == 0.01
        small, large = prompt.attempts
        assert (small.method, small.scale, small.extracted) == ("noise", 0.01, True)
        assert small.nearest_train_id == prompt.item_ids[0] and small.p_value is not None
        assert (large.scale, large.extracted) == (0.3, False)  # beyond the tolerance: the prior's samples
    assert outcome.metrics == {"retrigger.retriggered_count": 2.0}
    assert outcome.retrigger.generations == 4


def test_the_exact_memorizer_gives_nothing_back_under_any_perturbation(memorizers):
    _, extraction, outcome = _run(memorizers, "exact", "{enabled: true, scales: [0.01, 0.3], ascent_radius: null}")
    assert len(extraction.extraction.extracted_train_ids) == 2
    for prompt in outcome.retrigger.prompts:
        assert prompt.smallest_scale is None and not any(a.extracted for a in prompt.attempts)
    assert outcome.metrics == {"retrigger.retriggered_count": 0.0}


def test_the_ascent_records_the_shift_it_achieved(memorizers):
    """The exact memorizer's output does not depend smoothly on the embedding: no gradient, no shift, so the
    ascent's attempt is the prompt itself (scale 0), which still extracts."""
    _, _, outcome = _run(memorizers, "exact", "{enabled: true, scales: [0.3], ascent_steps: 2}")
    for prompt in outcome.retrigger.prompts:
        noise, ascent = prompt.attempts
        assert (ascent.method, ascent.scale, ascent.extracted) == ("ascent", 0.0, True)
        assert prompt.smallest_scale == 0.0 and not noise.extracted


def test_prompts_come_from_a_previous_scan_when_given(memorizers):
    context, extraction, _ = _run(memorizers, "exact", "{enabled: true, scales: [0.05], ascent_radius: null}")
    before = SimpleNamespace(checks={"extraction": extraction})
    tested, asked = prompts_to_test(context, {}, before)
    assert [g.index for g, _ in tested] == [0, 1] and asked == 2
    assert prompts_to_test(context, {}, SimpleNamespace(checks={})) == ([], 0)


def test_prompts_asked_for_that_match_nothing_are_not_a_pass(memorizers):
    """Re-triggering that examined none of the prompts it was asked for is not applicable, and a required
    rule on it is an error: it once tested "0 of 0" and passed copies-stay-gone."""
    from memaudit.scan.judge import judge

    context, extraction, _ = _run(memorizers, "exact", "{enabled: true, scales: [0.05], ascent_radius: null}")
    attacked = extraction.extraction.attacked
    elsewhere = [a.model_copy(update={"item_ids": [f"other-{i}" for i in a.item_ids]}) for a in attacked]
    moved = extraction.model_copy(
        update={"extraction": extraction.extraction.model_copy(update={"attacked": elsewhere})}
    )
    outcome = run_retrigger(context, {}, SimpleNamespace(checks={"extraction": moved}))
    assert outcome.status == "not_applicable" and outcome.required
    assert "none of the 2 extracted or flagged prompt(s) of the previous scan (--before)" in outcome.message
    verdict, (rule,), _ = judge(context.policy, {"retrigger": outcome})
    assert verdict == "error" and rule.status == "error" and rule.message.startswith("nothing examined: none of")
    optional = outcome.model_copy(update={"required": False})
    verdict, (rule,), _ = judge(context.policy, {"retrigger": optional})
    assert verdict == "pass" and rule.message.startswith("not applicable")


def test_retrigger_settings_are_checked(memorizers):
    with pytest.raises(PolicyError, match="scales must be finite and positive"):
        _context(memorizers, "exact", "{enabled: true, scales: [0.0]}")


def test_progress_counts_every_generation_of_every_attempt(memorizers):
    context, extraction, _ = _run(memorizers, "exact", "{enabled: true, scales: [0.01, 0.3], ascent_steps: 1}")
    progress = RecordingProgress()
    run_retrigger(dataclasses.replace(context, progress=progress), {"extraction": extraction}, None)
    # 2 extracted prompts x (2 noise scales + 1 ascent) x 4 generations, all done
    assert progress.stages["re-trigger: 2 prompt(s) x 3 perturbation(s) (generations)"] == [24, 24]


def test_a_killed_retrigger_reads_finished_prompts_back_and_gives_the_same_outcome(memorizers, tmp_path, monkeypatch):
    import memaudit.scan.retrigger_check as module
    from memaudit.scan.work_log import WorkLog

    settings = "{enabled: true, scales: [0.01, 0.3], ascent_radius: null}"
    context, extraction, uninterrupted = _run(memorizers, "tolerant", settings)
    logged = dataclasses.replace(context, work=WorkLog(tmp_path / "work"))
    original, calls = module.attack_candidate, []

    def dies_in_the_second_prompt(*args, **kwargs):
        if len(calls) == 2:  # two attempts per prompt
            raise RuntimeError("killed")
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "attack_candidate", dies_in_the_second_prompt)
    with pytest.raises(RuntimeError, match="killed"):
        run_retrigger(logged, {"extraction": extraction}, None)
    assert sorted(path.name for path in (tmp_path / "work").glob("retrigger-*.unit")) == ["retrigger-0.unit"]
    calls.clear()
    monkeypatch.setattr(module, "attack_candidate", lambda *a, **k: calls.append(1) or original(*a, **k))
    resumed = run_retrigger(dataclasses.replace(logged), {"extraction": extraction}, None)
    assert len(calls) == 2  # only the second prompt was attacked again
    assert resumed == uninterrupted
