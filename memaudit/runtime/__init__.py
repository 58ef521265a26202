"""Process-wide settings that must run before any Hugging Face or torchvision import."""

from memaudit.runtime.allocator import tune_allocator
from memaudit.runtime.offline import force_offline
from memaudit.runtime.torchvision_ops import install_torchvision_ops_guard

__all__ = ["apply", "force_offline", "install_torchvision_ops_guard", "tune_allocator"]


def apply() -> None:
    """Make the process offline, torchvision importable and large allocations cheap; safe to call
    more than once."""
    force_offline()
    install_torchvision_ops_guard()
    tune_allocator()
