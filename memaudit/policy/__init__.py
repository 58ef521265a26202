"""Policies: the pydantic schema, the metric catalogue and strict YAML loading."""

from memaudit.policy.loading import LoadedPolicy, load_policy, policy_json_schema, resolve_policy_path
from memaudit.policy.metrics import METRICS, MetricSpec
from memaudit.policy.model import Policy, Rule, Severity
from memaudit.policy.overrides import EffectivePolicy, PolicyOverrides, effective_policy

__all__ = [
    "METRICS",
    "EffectivePolicy",
    "LoadedPolicy",
    "MetricSpec",
    "Policy",
    "PolicyOverrides",
    "Rule",
    "Severity",
    "effective_policy",
    "load_policy",
    "policy_json_schema",
    "resolve_policy_path",
]
