"""The memorization battery and policy gate behind `memaudit scan`."""

from memaudit.scan.battery import ScanRequest, run_scan, timed_scan
from memaudit.scan.result import ScanResult

__all__ = ["ScanRequest", "ScanResult", "run_scan", "timed_scan"]
