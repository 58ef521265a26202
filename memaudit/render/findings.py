"""Each check of a report in a board's words: what it found and what that means for the release, then
whether the check ran, named as the check's run state so that it cannot be read as a rule's outcome."""

from __future__ import annotations

from dataclasses import dataclass

from memaudit.results.scan_result import CheckOutcome, RuleOutcome, ScanResult

RUN_STATES = {
    "ok": "Check ran: yes, to completion",
    "error": "Check ran: no, it could not run",
    "not_applicable": "Check ran: no, not applicable to this audit",
    "disabled": "Check ran: no, the policy disables it",
}
RULE_WORDS = {"pass": "passed", "warn": "warns", "fail": "FAILED", "error": "could not be judged"}
# A rule on a check that measured nothing is not breached, but "passed" there reads as evidence of safety.
UNMEASURED_RULE_WORDS = {**RULE_WORDS, "pass": "is not breached, with nothing measured"}


@dataclass(frozen=True)
class CheckFinding:
    """The lead of a check's section: ``found`` and ``meaning`` first, then the numbers, with ``run_state`` apart."""

    found: str
    meaning: str
    tone: str  # fail, warn, pass, error or note: how the finding is marked
    run_state: str


def _sentence(text: str) -> str:
    """``text`` ending as a sentence does, so that the next line of the lead does not run on from it."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _rules_on(result: ScanResult, check: str) -> list[RuleOutcome]:
    return [rule for rule in result.rules if rule.metric.split(".", 1)[0] == check]


def _named(rules: list[RuleOutcome], words: dict[str, str] = RULE_WORDS) -> str:
    return "; ".join(f"rule {rule.id} {words[rule.status]} ({rule.message})" for rule in rules)


def check_finding(result: ScanResult, check: str) -> CheckFinding:
    """The finding of ``check`` (a key of ``result.checks``) in plain words, from its outcome and the rules on it."""
    outcome: CheckOutcome = result.checks[check]
    subject = "the model" if result.mode == "model" else "the image release"
    rules = _rules_on(result, check)
    run_state = RUN_STATES[outcome.status]
    if outcome.status != "ok":
        found = f"Nothing was measured: {_sentence(outcome.message)}" if outcome.message else "Nothing was measured."
        if outcome.status == "error" and outcome.required:
            meaning = f"This check is required, so the audit cannot clear {subject} until it runs."
            return CheckFinding(found, meaning, "error", run_state)
        meaning = "It does not count towards the verdict."
        if rules:
            meaning = f"No evidence either way: {_named(rules, UNMEASURED_RULE_WORDS)}."
        return CheckFinding(found, meaning, "note", run_state)
    found = outcome.message or "The check ran and reported no figures."
    failed = [rule for rule in rules if rule.status == "fail"]
    unjudged = [rule for rule in rules if rule.status == "error"]
    warned = [rule for rule in rules if rule.status == "warn"]
    if failed:
        meaning = f"This finding stands against releasing {subject}: {_named(failed)}."
        return CheckFinding(found, meaning, "fail", run_state)
    if unjudged:
        meaning = f"The policy's rule on it could not decide: {_named(unjudged)}."
        return CheckFinding(found, meaning, "error", run_state)
    if warned:
        meaning = f"A warning for the board, not a failure: {_named(warned)}."
        return CheckFinding(found, meaning, "warn", run_state)
    if rules:
        meaning = f"Nothing here stands against releasing {subject}: {_named(rules)}."
        return CheckFinding(found, meaning, "pass", run_state)
    meaning = "No rule of this policy judges this check: it is evidence for the board, not part of the verdict."
    return CheckFinding(found, meaning, "note", run_state)
