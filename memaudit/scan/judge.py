"""Judge check outcomes against a policy's rules: fail closed, and say by how much.

A rate (a share of a drawn sample) fails its rule only when the sample shows the excess at the
policy's rate confidence (a one-sided binomial test against the threshold), so that 3 near copies
among 24 samples do not fail a 10% rule by chance; the rule outcome states n and the p-value.
"""

from __future__ import annotations

from memaudit.metrics.calibration import binomial_cdf, binomial_exceedance
from memaudit.policy import METRICS, Policy
from memaudit.results.scan_result import CheckOutcome, RuleOutcome, Verdict


def judge_rule(rule_id: str, policy: Policy, checks: dict[str, CheckOutcome]) -> RuleOutcome:
    outcome = _judge_rule(rule_id, policy, checks)
    caveat = checks[METRICS[outcome.metric].check].caveat
    if outcome.status == "pass" and outcome.value is not None and caveat:  # holds on evidence its check calls weak
        return outcome.model_copy(update={"status": "warn", "message": f"{outcome.message}; only a warning: {caveat}"})
    return outcome


def _judge_rule(rule_id: str, policy: Policy, checks: dict[str, CheckOutcome]) -> RuleOutcome:
    rule = policy.rules[rule_id]
    spec = METRICS[rule.metric]
    outcome = checks[spec.check]
    common = dict(
        id=rule_id,
        metric=rule.metric,
        description=rule.description or spec.description,
        threshold=rule.threshold,
        direction=rule.direction,
        severity=rule.severity.value,
    )
    if outcome.status == "ok" and rule.metric in outcome.not_applicable:
        reason = outcome.not_applicable[rule.metric]
        if outcome.required:
            return RuleOutcome(**common, value=None, status="error", message=f"cannot fail at these sizes: {reason}")
        return RuleOutcome(**common, value=None, status="pass", message=f"not applicable: {reason}")
    if outcome.status != "ok" or rule.metric not in outcome.metrics:
        reason = outcome.message or f"{spec.check} produced no {rule.metric}"
        if outcome.status == "not_applicable" and not outcome.required:
            return RuleOutcome(**common, value=None, status="pass", message=f"not applicable: {reason}")
        if outcome.status == "not_applicable":  # asked to examine something and examined nothing
            return RuleOutcome(**common, value=None, status="error", message=f"nothing examined: {reason}")
        # A required check that could not run is an error, never a pass; an optional one warns.
        status = "error" if outcome.required else "warn"
        return RuleOutcome(**common, value=None, status=status, message=f"not measured: {reason}")
    value = outcome.metrics[rule.metric]
    comparison = "<=" if rule.direction == "at_most" else ">="
    samples = outcome.sample_sizes.get(rule.metric) if spec.rate else None
    if samples and not rule.passes(value):
        return _judge_rate(rule, common, value=value, samples=samples, confidence=policy.calibration.rate_confidence)
    if rule.passes(value):
        return RuleOutcome(**common, value=value, status="pass", message=f"{value:.6g} {comparison} {rule.threshold:g}")
    excess = value - rule.threshold if rule.direction == "at_most" else rule.threshold - value
    return RuleOutcome(
        **common,
        value=value,
        status=rule.severity.value,
        message=f"{value:.6g} violates {comparison} {rule.threshold:g} by {excess:.6g}",
    )


def _judge_rate(rule, common: dict, *, value: float, samples: int, confidence: float) -> RuleOutcome:
    """A rate beyond its threshold: fail only if the excess is significant on this sample size."""
    count = round(value * samples)
    if rule.direction == "at_most":
        p_value = binomial_exceedance(count, samples, rule.threshold)
    else:
        p_value = binomial_cdf(count, samples, rule.threshold)
    significant = p_value <= 1.0 - confidence
    side = "above" if rule.direction == "at_most" else "below"
    verdict = "<= {:.3g}: the excess is significant" if significant else "> {:.3g}: within chance"
    message = (
        f"{value:.6g} ({count} of {samples}) is {side} {rule.threshold:g}; one-sided binomial p = {p_value:.3g} "
        + verdict.format(1 - confidence)
    )
    status = rule.severity.value if significant else "pass"
    return RuleOutcome(**common, value=value, status=status, message=message, samples=samples, p_value=p_value)


def judge(policy: Policy, checks: dict[str, CheckOutcome]) -> tuple[Verdict, list[RuleOutcome], str]:
    """(verdict, one outcome per rule in policy order, a one-line summary)."""
    rules = [judge_rule(rule_id, policy, checks) for rule_id in policy.rules]
    errors = [rule.id for rule in rules if rule.status == "error"]
    failures = [rule.id for rule in rules if rule.status == "fail"]
    warnings = [rule.id for rule in rules if rule.status == "warn"]
    if errors:
        verdict: Verdict = "error"
        summary = f"ERROR: required checks could not run for rule(s) {', '.join(errors)}"
    elif failures:
        verdict = "fail"
        summary = f"FAILED: {len(failures)} of {len(rules)} rules violated ({', '.join(failures)})"
    else:
        verdict = "pass"
        summary = f"PASSED: all {len(rules)} rules hold"
    if warnings:
        summary += f"; warnings: {', '.join(warnings)}"
    notes = [note for outcome in checks.values() for note in outcome.warnings]
    if notes:
        summary += "; calibration warning: " + "; ".join(notes)
    return verdict, rules, summary
