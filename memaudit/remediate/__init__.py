"""MemControl remediation: search block masks for low memorization and high quality, retrain, re-scan;
and the gate that runs it when a scan fails (gate.py)."""
