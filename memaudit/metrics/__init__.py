"""Metrics: pure functions over tensors, one file per metric, each stating its direction."""
