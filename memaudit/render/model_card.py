"""A Hugging Face model-card snippet: model-index metadata with the headline metrics, plus one paragraph."""

from __future__ import annotations

from pathlib import Path

import yaml

from memaudit.results.scan_result import RunRecord, ScanResult

HEADLINE = {
    "extraction.extracted_count": ("extracted_training_images", "Extracted training images"),
    "nearest_neighbour.near_copy_rate": ("near_copy_rate", "Near-copy rate"),
    "nearest_neighbour.amd": ("average_min_distance", "Average minimum cosine distance to training set"),
    "noise_magnitude.flagged_fraction": ("flagged_prompt_fraction", "Prompts flagged by noise magnitude"),
    "fid.fid": ("fid", "FID against holdout images"),
    "alignment.score": ("biovil_t_alignment", "BioViL-T image-report alignment"),
}


def model_card_snippet(result: ScanResult, run: RunRecord | None = None) -> str:
    model_name = Path(result.model.source).name if result.model else "synthetic-image-release"
    metrics = []
    for check in result.checks.values():
        for metric, value in check.metrics.items():
            if metric in HEADLINE:
                kind, label = HEADLINE[metric]
                metrics.append({"type": kind, "value": round(value, 6), "name": f"{label} (memaudit)"})
    metadata = {
        "model-index": [
            {
                "name": model_name,
                "results": [
                    {
                        "task": {"type": "text-to-image", "name": "Training-data memorization audit"},
                        "dataset": {
                            "name": f"private training set sha256:{result.train.digest[:16]}",
                            "type": "private",
                        },
                        "metrics": metrics,
                    }
                ],
            }
        ]
    }
    return (
        "---\n"
        + yaml.safe_dump(metadata, sort_keys=False)
        + "---\n\n## Memorization audit\n\n"
        + f"Audited with memaudit {result.environment.memaudit} under policy `{result.policy.name}` "
        + f"(sha256 `{result.policy.sha256[:16]}`): **{result.verdict.upper()}**. {result.summary}\n"
    )
