"""memaudit: a privacy-compliance gate for fine-tuned Stable Diffusion models."""

from memaudit import runtime as _runtime

_runtime.apply()

__version__ = "0.1.0"
