"""Keep Hugging Face libraries from reaching the network: memaudit only ever reads local files."""

from __future__ import annotations

import os
import sys

# Variables read once, at import time, by huggingface_hub, transformers and diffusers.
OFFLINE_VARIABLES = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DISABLE_TELEMETRY": "1",
}


def force_offline() -> None:
    """Set the offline variables unless the user set them, and patch an already imported hub.

    A user who exports HF_HUB_OFFLINE=0 on purpose keeps that choice; everyone else gets a process
    in which a missing local file fails at once instead of retrying remote look-ups for minutes.
    """
    for name, value in OFFLINE_VARIABLES.items():
        os.environ.setdefault(name, value)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and os.environ["HF_HUB_OFFLINE"] not in ("0", "false", "False"):
        # huggingface_hub was imported before memaudit: its constant was read already.
        constants.HF_HUB_OFFLINE = True
