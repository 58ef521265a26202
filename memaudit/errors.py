"""Error types: every user-facing failure is a MemauditError whose message names the bad input."""

from __future__ import annotations


class MemauditError(Exception):
    """A usage, configuration, input or execution error. The CLI prints the message and exits 2."""


class CheckpointError(MemauditError):
    """A model checkpoint that cannot be loaded safely or completely."""


class DataError(MemauditError):
    """A dataset manifest, row or image that cannot be read."""


class PolicyError(MemauditError):
    """A policy file that does not validate."""


class ExitCode:
    """Exit codes of every memaudit command; findings and errors never share one."""

    OK = 0
    FINDING = 1  # policy violated, verification failed, data problem found
    ERROR = 2  # usage, configuration, input or execution error
