"""The re-trigger check: is a copy gone, or only hidden? (Finding Dori; DESIGN 3.8)

For prompts that a scan found memorized (extracted) or suspicious (flagged), either this scan's or a
previous scan's given with ``--before``, the prompt's text embedding is perturbed (Gaussian noise at
each policy scale, smallest first, then a few steps of gradient ascent on the first-step noise
difference) and every perturbed embedding gets the extraction attack: the same generations, clique and
calibrated thresholds, with the family test over all attempts of the check. A prompt is re-triggered
when some attempt extracts a training image; the report gives the smallest perturbation that did.
"""

from __future__ import annotations

from memaudit.results.attack_evidence import RetriggerAttempt, RetriggeredPrompt, RetriggerEvidence
from memaudit.results.scan_result import AttackedPrompt, CheckOutcome, ScanResult
from memaudit.sampling.retrigger import (
    ascent_perturbation,
    gaussian_perturbation,
    perturbation_seed,
    relative_shift,
)
from memaudit.sampling.seeds import sample_seed
from memaudit.scan.context import PromptGroup, ScanContext
from memaudit.scan.extraction_check import attack_candidate
from memaudit.scan.extraction_thresholds import extraction_thresholds


def candidates(checks: dict[str, CheckOutcome]) -> list[tuple[tuple[str, ...], str]]:
    """(item ids, source) of every extracted prompt, then every flagged one by descending score, each once."""
    found: dict[tuple[str, ...], str] = {}
    extraction = checks.get("extraction")
    for attacked in extraction.extraction.attacked if extraction and extraction.extraction else []:
        if attacked.extracted:
            found.setdefault(tuple(attacked.item_ids), "extracted")
    noise = checks.get("noise_magnitude")
    flagged = [p for p in noise.noise_magnitude.train if p.flagged] if noise and noise.noise_magnitude else []
    for prompt in sorted(flagged, key=lambda p: -p.score):
        found.setdefault(tuple(prompt.item_ids), "flagged")
    return list(found.items())


def prompts_to_test(
    context: ScanContext, checks: dict[str, CheckOutcome], before: ScanResult | None
) -> tuple[list[tuple[PromptGroup, str]], int]:
    """((group, source) to test, how many prompts were asked for): extracted prompts first, then flagged
    ones by descending score, at most ``max_prompts``; from ``before`` when given (matched by the training
    item ids they carry; one that matches no training prompt is asked for but cannot be tested)."""
    by_ids = {tuple(context.ids(group.rows)): group for group in context.train_groups}
    asked = candidates(before.checks if before is not None else checks)[: context.policy.checks.retrigger.max_prompts]
    chosen: dict[int, tuple[PromptGroup, str]] = {}
    for ids, source in asked:
        group = by_ids.get(ids)
        if group is not None:
            chosen.setdefault(group.index, (group, source))
    return list(chosen.values()), len(asked)


def _embeddings(context: ScanContext, group: PromptGroup):
    """(method, scale, embedding) for every perturbation the policy asks for, in the order tried."""
    settings, sampling = context.policy.checks.retrigger, context.policy.sampling
    embedding = context.embed([group.caption])
    for attempt, scale in enumerate(settings.scales):
        seed = perturbation_seed(sampling.seed, group.index, attempt)
        yield "noise", scale, gaussian_perturbation(embedding, scale=scale, seed=seed)
    if settings.ascent_radius is not None:
        seeds = [sample_seed(sampling.seed, "retrigger-ascent", group.index * 16 + k) for k in range(4)]
        moved = ascent_perturbation(
            context.pipeline, embedding, context.empty_embedding, radius=settings.ascent_radius,
            steps=settings.ascent_steps, seeds=seeds, latent_size=context.latent_side,
            num_inference_steps=sampling.num_inference_steps, scheduler=sampling.scheduler,
        )  # fmt: skip
        # The scale achieved, not the budget: a model that gives no gradient leaves the prompt unmoved (0).
        yield "ascent", round(relative_shift(moved, embedding), 6), moved


def run_retrigger(context: ScanContext, checks: dict[str, CheckOutcome], before: ScanResult | None) -> CheckOutcome:
    """The check: the prompts ``prompts_to_test`` picks, re-triggered. When prompts were asked for and none
    is in this training set the check examined nothing: not applicable, saying why (never a pass)."""
    tested, asked = prompts_to_test(context, checks, before)
    settings = context.policy.checks.retrigger
    if asked and not tested:
        where = "the previous scan (--before)" if before is not None else "this scan"
        return CheckOutcome(
            status="not_applicable",
            required=settings.required,
            message=f"none of the {asked} extracted or flagged prompt(s) of {where} is a prompt of this training "
            "set: nothing was re-triggered",
        )
    outcome = retrigger(context, tested)
    if len(tested) < asked:
        missing = asked - len(tested)
        return outcome.model_copy(
            update={"message": f"{outcome.message} ({missing} of {asked} asked for are not in this training set)"}
        )
    return outcome


def retrigger(context: ScanContext, tested: list[tuple[PromptGroup, str]]) -> CheckOutcome:
    """Perturb and attack each (group, why it is tested) prompt; the outcome of the re-trigger check.
    Each prompt's attempts are a unit of work (read back after a kill; one rank's in a sharded scan)."""
    settings = context.policy.checks.retrigger
    generations = settings.generations or context.policy.checks.extraction.generations
    thresholds = extraction_thresholds(context)
    attempts = len(settings.scales) + (settings.ascent_radius is not None)
    mine = context.shard.part(list(range(len(tested))))
    # Counted in generations, as the other sampling stages: a prompt's attempts can take minutes each.
    advance = context.progress.stage(
        f"re-trigger: {len(mine)} prompt(s) x {attempts} perturbation(s) (generations)",
        len(mine) * attempts * generations,
    )
    done = [
        (p, _attempts(context, tested[p][0], generations=generations, thresholds=thresholds, advance=advance))
        for p in mine
    ]
    by_position = dict(context.shard.gather(done))
    candidates, attempts_of = [], []  # one AttackedPrompt per attempt (for the family test), and its place
    for position in range(len(tested)):
        for attempt in by_position[position]:
            candidates.append(AttackedPrompt.model_validate(attempt["record"]))
            attempts_of.append((position, attempt["method"], attempt["scale"]))
    judged = thresholds.judge(candidates, count=False)  # attempts of one prompt are not independent
    prompts = [
        _prompt(context, group, source=source, judged=judged, attempts_of=attempts_of, position=position)
        for position, (group, source) in enumerate(tested)
    ]
    count = sum(p.smallest_scale is not None for p in prompts)
    return CheckOutcome(
        status="ok",
        required=settings.required,
        message=f"{count} of {len(prompts)} formerly memorized or flagged prompt(s) re-extract a training image "
        "under a small perturbation of their text embedding",
        metrics={"retrigger.retriggered_count": float(count)},
        retrigger=RetriggerEvidence(generations=generations, prompts=prompts),
    )


def _attempts(context: ScanContext, group: PromptGroup, *, generations: int, thresholds, advance) -> list[dict]:
    """``[{method, scale, record}]``: the attack on each perturbation of one prompt (before the family
    test), as exact JSON; read back from the work log when a killed run of this scan finished it."""
    unit = f"retrigger-{group.index}"
    saved = context.work.get(unit) if context.work else None
    if saved is not None:
        advance(len(saved) * generations)
        return saved
    seed = context.policy.sampling.seed
    attempts = []
    for number, (method, scale, embedding) in enumerate(_embeddings(context, group)):
        seeds = [
            sample_seed(seed, "retrigger", (group.index * 100 + number) * generations + k) for k in range(generations)
        ]
        images = context.generate_from(embedding.repeat(generations), seeds=seeds, progress=advance)
        record, _, _ = attack_candidate(
            context, images, thresholds=thresholds, item_ids=context.ids(group.rows), reason="flagged"
        )
        attempts.append({"method": method, "scale": scale, "record": record.model_dump(mode="json")})
    if context.work:
        context.work.put(unit, attempts)
    return attempts


def _prompt(context, group, *, source, judged, attempts_of, position) -> RetriggeredPrompt:
    attempts = [
        RetriggerAttempt(
            method=method,
            scale=scale,
            clique_size=attacked.clique_size,
            nearest_train_id=attacked.nearest_train_id,
            distance=attacked.distance,
            extracted=attacked.extracted,
            p_value=attacked.p_value,
        )
        for attacked, (where, method, scale) in zip(judged, attempts_of, strict=True)
        if where == position
    ]
    hits = [a.scale for a in attempts if a.extracted and a.method == "noise"]
    hits += [a.scale for a in attempts if a.extracted and a.method == "ascent"]
    return RetriggeredPrompt(
        item_ids=context.ids(group.rows), source=source, smallest_scale=min(hits) if hits else None, attempts=attempts
    )
