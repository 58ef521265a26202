"""`policy init`: a shipped policy with its calibration quantiles widened just enough for a given holdout,
written as a commented YAML file that says what was changed and why."""

from __future__ import annotations

import math
from dataclasses import dataclass

import yaml

from memaudit.policy.holdout_needs import PATIENT_FALSE_ALARM, HoldoutCounts, holdout_needs
from memaudit.policy.loading import LoadedPolicy
from memaudit.policy.model import Policy

# setting -> (path in the policy, whether the policy stores 1 - false-alarm share)
QUANTILES = {
    "checks.noise_magnitude.calibration_quantile": (("checks", "noise_magnitude", "calibration_quantile"), True),
    "checks.extraction.verify_quantile": (("checks", "extraction", "verify_quantile"), False),
    "checks.extraction.specificity_quantile": (("checks", "extraction", "specificity_quantile"), False),
    "checks.nearest_neighbour.near_copy_quantile": (("checks", "nearest_neighbour", "near_copy_quantile"), False),
}


def smallest_false_alarm(available: int, confidence: float) -> float:
    """The smallest false-alarm share ``available`` holdout values bound at ``confidence`` (their smallest
    value as the threshold), rounded up to 4 decimals: minimum_holdout(result, confidence) <= available."""
    if available < 1:
        raise ValueError("no holdout values: nothing can be calibrated")
    exact = 1.0 - (1.0 - confidence) ** (1.0 / available)
    return math.ceil(exact * 10_000) / 10_000


@dataclass(frozen=True)
class InitialPolicy:
    policy: Policy
    header: list[str]  # the comment lines the YAML file opens with
    changes: list[str]  # one line per setting changed, with its reason
    unmet: list[str]  # needs no quantile can meet (patient-level metrics need more patients)

    @property
    def text(self) -> str:
        """The YAML file, comments first."""
        body = yaml.safe_dump(self.policy.model_dump(mode="json"), sort_keys=False, width=100)
        return "".join(f"# {line}".rstrip() + "\n" for line in self.header) + body

    def amended(self, policy: Policy, *, header: list[str], changes: list[str], unmet: list[str]) -> InitialPolicy:
        """This policy changed again (e.g. its budgets fitted to a time), the reasons added to its comments."""
        return InitialPolicy(
            policy=policy, header=self.header + header, changes=self.changes + changes, unmet=self.unmet + unmet
        )


def initial_policy(base: LoadedPolicy, counts: HoldoutCounts, *, name: str, source: str) -> InitialPolicy:
    """``base`` with every quantile its holdout cannot support widened to the smallest one it can. A
    quantile the holdout already supports is kept: widening costs sensitivity."""
    content = base.policy.model_dump(mode="json", exclude_unset=False)
    content["name"] = name
    changes, unmet = [], []
    for need in holdout_needs(base.policy, counts):
        if not need.missing:
            continue
        if need.setting not in QUANTILES:
            unmet.append(
                f"{need.setting}: needs {need.required} {need.unit} for its fixed {PATIENT_FALSE_ALARM:.0%} "
                f"point, has {need.available}; give more holdout patients or drop the rule"
            )
            continue
        path, complement = QUANTILES[need.setting]
        share = smallest_false_alarm(need.available, need.confidence)
        value = round(1.0 - share, 4) if complement else share
        section = content
        for key in path[:-1]:
            section = section[key]
        old = section[path[-1]]
        section[path[-1]] = value
        changes.append(
            f"{need.setting}: {old} -> {value} (the holdout has {need.available} {need.unit}; "
            f"{need.required} are needed for a false-alarm share of {need.false_alarm:g} at confidence "
            f"{need.confidence:g}, {need.available} bound {share:g})"
        )
    policy = Policy.model_validate(content)
    header = [
        f"Written by `memaudit policy init` from the shipped policy '{base.policy.name}' ({base.path}, sha256 "
        f"{base.sha256[:16]}...) for the holdout {source}:",
        f"{counts.images} images, {counts.prompts} {counts.prompts_unit}, {counts.patients} {counts.patients_unit}.",
    ]
    if changes:
        header += ["Quantiles widened so that this holdout supports them (a wider quantile flags more unseen items:",
                   "a larger holdout restores the shipped values):", *(f"  {line}" for line in changes)]  # fmt: skip
    else:
        header.append("The holdout supports every quantile of the shipped policy; nothing was changed.")
    if unmet:
        header += ["NOT met (a scan with this policy stops until they are):", *(f"  {line}" for line in unmet)]
    return InitialPolicy(policy=policy, header=header, changes=changes, unmet=unmet)
