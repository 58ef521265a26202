"""Renderers: views of a result (ScanResult, RemediationResult) and nothing else; each scan view has
the signature (result, run) -> text or bytes (render/outputs.py lists them by file name)."""

from memaudit.render.junit import junit_xml
from memaudit.render.outputs import VIEWS, write_scan_outputs

__all__ = ["VIEWS", "junit_xml", "write_scan_outputs"]
