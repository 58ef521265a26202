"""Judge check outcomes against a policy's rules: fail closed, and say by how much."""

from __future__ import annotations

from memaudit.policy import METRICS, Policy
from memaudit.results.scan_result import CheckOutcome, RuleOutcome, Verdict


def judge_rule(rule_id: str, policy: Policy, checks: dict[str, CheckOutcome]) -> RuleOutcome:
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
    if outcome.status != "ok" or rule.metric not in outcome.metrics:
        reason = outcome.message or f"{spec.check} produced no {rule.metric}"
        if outcome.status == "not_applicable":
            return RuleOutcome(**common, value=None, status="pass", message=f"not applicable: {reason}")
        # A required check that could not run is an error, never a pass; an optional one warns.
        status = "error" if outcome.required else "warn"
        return RuleOutcome(**common, value=None, status=status, message=f"not measured: {reason}")
    value = outcome.metrics[rule.metric]
    comparison = "<=" if rule.direction == "at_most" else ">="
    if rule.passes(value):
        return RuleOutcome(**common, value=value, status="pass", message=f"{value:.6g} {comparison} {rule.threshold:g}")
    excess = value - rule.threshold if rule.direction == "at_most" else rule.threshold - value
    return RuleOutcome(
        **common,
        value=value,
        status=rule.severity.value,
        message=f"{value:.6g} violates {comparison} {rule.threshold:g} by {excess:.6g}",
    )


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
    return verdict, rules, summary
