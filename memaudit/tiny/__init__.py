"""Tiny SD-layout models built from configs: test fixtures, demo and benchmark starting points."""
