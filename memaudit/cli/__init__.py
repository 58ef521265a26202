"""Command-line interface: parses, calls the library, prints, and chooses the exit code."""

from memaudit.cli.app import app, main, run

__all__ = ["app", "main", "run"]
