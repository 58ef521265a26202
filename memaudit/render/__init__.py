"""Renderers: each takes a ScanResult and nothing else. Files are written atomically."""

from memaudit.render.files import write_atomic
from memaudit.render.junit import junit_xml
from memaudit.render.outputs import write_scan_outputs

__all__ = ["junit_xml", "write_atomic", "write_scan_outputs"]
