"""`memaudit demo`: the embedded end-to-end story, runnable on a fresh machine with no downloads.

Today it covers what exists: build a tiny SD-layout model from configs, save it as a diffusers
folder and as an original-layout single file, load both back through the safe loader, check that
they describe the same model, and validate the shipped policies. Scanning and remediation join
the story as they land.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memaudit.checkpoint import CheckpointSummary, load_checkpoint, summarize
from memaudit.paths import POLICIES_DIR
from memaudit.policy import LoadedPolicy, load_policy
from memaudit.tiny.pipeline import build_tiny_pipeline, save_diffusers_folder, save_single_file_twin


@dataclass
class DemoResult:
    folder: CheckpointSummary
    single_file: CheckpointSummary
    policies: list[LoadedPolicy]

    @property
    def formats_agree(self) -> bool:
        return self.folder.architecture() == self.single_file.architecture()


def run_demo(out_dir: Path, *, seed: int = 0) -> DemoResult:
    out_dir = Path(out_dir)
    pipeline = build_tiny_pipeline(seed=seed)
    folder = save_diffusers_folder(pipeline, out_dir / "tiny-model")
    weights, config = save_single_file_twin(pipeline, out_dir / "tiny-model.safetensors", out_dir / "tiny-config")
    return DemoResult(
        folder=summarize(load_checkpoint(folder)),
        single_file=summarize(load_checkpoint(weights, config_dir=config)),
        policies=[load_policy(path) for path in sorted(POLICIES_DIR.glob("*.yaml"))],
    )
