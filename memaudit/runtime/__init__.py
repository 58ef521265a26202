"""Process-wide guards that must run before any Hugging Face or torchvision import."""

from memaudit.runtime.offline import force_offline
from memaudit.runtime.torchvision_ops import install_torchvision_ops_guard

__all__ = ["apply", "force_offline", "install_torchvision_ops_guard"]


def apply() -> None:
    """Make the process offline and torchvision importable; safe to call more than once."""
    force_offline()
    install_torchvision_ops_guard()
