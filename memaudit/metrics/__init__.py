"""Metrics: pure functions over tensors, one file per metric. Which way is better for a policy rule is
stated once, in the metric catalogue (memaudit.policy.metrics), not here."""
