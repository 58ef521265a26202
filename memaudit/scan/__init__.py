"""The memorization battery and policy gate behind `memaudit scan`."""

from memaudit.results.scan_result import ScanResult
from memaudit.scan.planning import plan_request
from memaudit.scan.request import ScanRequest
from memaudit.scan.run import run_scan, timed_scan

__all__ = ["ScanRequest", "ScanResult", "plan_request", "run_scan", "timed_scan"]
