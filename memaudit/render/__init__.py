"""Renderers: each takes a ScanResult and nothing else. Files are written atomically."""

from memaudit.render.files import write_atomic
from memaudit.render.junit import junit_xml

__all__ = ["junit_xml", "write_atomic"]
