"""MemControl remediation: search block masks for low memorization and high quality, retrain, re-scan."""
