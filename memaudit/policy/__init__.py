"""Policies: the pydantic schema, the metric catalogue and strict YAML loading."""

from memaudit.policy.loading import LoadedPolicy, load_policy, policy_json_schema, resolve_policy_path
from memaudit.policy.metrics import METRICS, MetricSpec
from memaudit.policy.model import Policy, Rule, Severity

__all__ = [
    "METRICS",
    "LoadedPolicy",
    "MetricSpec",
    "Policy",
    "Rule",
    "Severity",
    "load_policy",
    "policy_json_schema",
    "resolve_policy_path",
]
