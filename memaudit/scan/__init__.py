"""The memorization battery and policy gate behind `memaudit scan`."""

from memaudit.results.scan_result import ScanResult
from memaudit.scan.planning import plan_request
from memaudit.scan.request import ScanRequest
from memaudit.scan.run import FinishedScan, finished_scan, run_scan, timed_scan

__all__ = ["FinishedScan", "ScanRequest", "ScanResult", "finished_scan", "plan_request", "run_scan", "timed_scan"]
