"""What a policy needs from the holdout: per calibrated threshold, how many holdout values its quantile
needs at the policy's confidence (DESIGN 3.5), against how many the holdout has."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from memaudit.data import ImageCaptionDataset
from memaudit.metrics.calibration import minimum_holdout
from memaudit.paths import POLICIES_DIR
from memaudit.policy.loading import LoadedPolicy, load_policy
from memaudit.policy.model import Policy

PATIENT_METRICS = ("membership.patient_auc", "membership.patient_tpr_at_1pct_fpr")
PATIENT_FALSE_ALARM = 0.01  # the patient TPR is read where 1% of unseen patients are accused


@dataclass(frozen=True)
class HoldoutCounts:
    """What a holdout offers each calibration: images, distinct prompts (captions, or prompts as the model
    reads them), distinct patients (0 when any study names none); the units say what was counted."""

    images: int
    prompts: int
    patients: int
    prompts_unit: str = "distinct captions"
    patients_unit: str = "distinct patients"


@dataclass(frozen=True)
class HoldoutNeed:
    setting: str  # the policy setting (or rule) that asks for the calibration
    false_alarm: float
    confidence: float
    available: int
    unit: str
    required: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "required", minimum_holdout(self.false_alarm, self.confidence))

    @property
    def missing(self) -> int:
        """How many more holdout values the quantile needs (0 when it has enough)."""
        return max(0, self.required - self.available)


def holdout_counts(holdout: ImageCaptionDataset, *, prompts: tuple[int, str] | None = None) -> HoldoutCounts:
    """The counts of ``holdout``; ``prompts``: (n, unit) of the prompts as the model reads them, where the
    caller has the tokenizer (default: distinct captions, an upper bound)."""
    prompts = prompts or (len(set(holdout.captions)), "distinct captions")
    unnamed = sum(not record.patient_id for record in holdout.records)
    if unnamed:  # no patient metric is measured when a study names no patient
        patients = 0, f"patients to count ({unnamed} of {len(holdout)} studies name no patient_id)"
    else:
        patients = len({r.patient_id for r in holdout.records}), f"distinct patients (in {len(holdout)} studies)"
    return HoldoutCounts(
        images=len(holdout),
        prompts=prompts[0],
        prompts_unit=prompts[1],
        patients=patients[0],
        patients_unit=patients[1],
    )


def holdout_needs(policy: Policy, counts: HoldoutCounts, *, with_model: bool = True) -> list[HoldoutNeed]:
    """Every calibration ``policy`` runs, whether or not the holdout suffices (``small_holdout`` decides
    elsewhere what a shortfall means). ``with_model``: a model scan (noise flags and membership run);
    an ``--images`` audit calibrates the image thresholds only."""
    checks, confidence = policy.checks, policy.calibration.confidence
    needs: list[tuple[str, float, int, str]] = []
    if checks.noise_magnitude.enabled and with_model:
        quantile = 1 - checks.noise_magnitude.calibration_quantile
        needs.append(("checks.noise_magnitude.calibration_quantile", quantile, counts.prompts, counts.prompts_unit))
    if checks.extraction.enabled:
        needs.append(("checks.extraction.verify_quantile", checks.extraction.verify_quantile, counts.images, "images"))
        if checks.extraction.specificity_quantile is not None:
            quantile = checks.extraction.specificity_quantile
            needs.append(("checks.extraction.specificity_quantile", quantile, counts.images, "images"))
    if checks.nearest_neighbour.enabled:
        quantile = checks.nearest_neighbour.near_copy_quantile
        needs.append(("checks.nearest_neighbour.near_copy_quantile", quantile, counts.images, "images"))
    patient_rules = [rule_id for rule_id, rule in policy.rules.items() if rule.metric in PATIENT_METRICS]
    if checks.membership.enabled and with_model and patient_rules:
        setting = f"rule {patient_rules[0]} on a patient-level membership metric"
        needs.append((setting, PATIENT_FALSE_ALARM, counts.patients, counts.patients_unit))
    return [
        HoldoutNeed(setting=setting, false_alarm=q, confidence=confidence, available=n, unit=unit)
        for setting, q, n, unit in needs
    ]


@dataclass(frozen=True)
class PolicySupport:
    """Whether a holdout suffices for a policy: each need, and what a shortfall means under it."""

    policy: str
    path: str
    small_holdout: str  # error: a shortfall stops the scan; warn: it calibrates with a stated, weaker bound
    needs: list[HoldoutNeed]

    @property
    def supported(self) -> bool:
        return all(need.missing == 0 for need in self.needs)

    def describe(self) -> str:
        short = [need for need in self.needs if need.missing]
        if not short:
            return f"{self.policy}: supported ({len(self.needs)} calibrated threshold(s))"
        lacks = "; ".join(
            f"{need.setting} (false-alarm share {need.false_alarm:.3g} at confidence {need.confidence:g}) needs "
            f"{need.required} {need.unit}, has {need.available}: {need.missing} more"
            for need in short
        )
        outcome = "a scan stops" if self.small_holdout == "error" else "a scan warns and states a weaker bound"
        return f"{self.policy}: NOT supported ({outcome}): {lacks}"

    def as_dict(self) -> dict:
        needs = [asdict(need) | {"missing": need.missing} for need in self.needs]
        return asdict(self) | {"supported": self.supported, "needs": needs}


def policy_support(loaded: LoadedPolicy, counts: HoldoutCounts, *, with_model: bool = True) -> PolicySupport:
    policy = loaded.policy
    return PolicySupport(
        policy=policy.name,
        path=str(loaded.path),
        small_holdout=policy.calibration.small_holdout,
        needs=holdout_needs(policy, counts, with_model=with_model),
    )


def shipped_policies() -> list[LoadedPolicy]:
    """Every policy in policies/, by name."""
    return [load_policy(path) for path in sorted(POLICIES_DIR.glob("*.yaml"))]
