"""`memaudit scan --plan`: the plan as a table (or JSON), read before committing hours to a scan."""

from __future__ import annotations

from rich.table import Table

from memaudit.cli.console import stdout
from memaudit.scan.plan import ScanPlan

COLUMNS = (
    ("stage", "stage"),
    ("UNet evals", "unet_evaluations"),
    ("decodes", "vae_decodes"),
    ("encodes", "vae_encodes"),
    ("features", "feature_extractions"),
    ("tiled-L2 pairs", "tiled_l2_comparisons"),
    ("image loads", "image_loads"),
    ("time", "seconds"),
)


def process_start_time() -> float:
    """When this process began (seconds since the epoch): the plan's start then counts the imports."""
    import psutil

    return psutil.Process().create_time()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "not timed"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def size(count: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= factor:
            return f"{count / factor:.1f} {unit}"
    return f"{count} B"


def print_plan(plan: ScanPlan, *, as_json: bool) -> None:
    if as_json:
        stdout.print_json(plan.model_dump_json())
        return
    sizes = plan.sizes
    stdout.print(
        f"plan of policy {plan.policy}: {sizes.train_prompts:,} distinct training prompts, "
        f"{sizes.train_images:,} distinct training images, {sizes.holdout_rows:,} holdout images, "
        f"compared at {sizes.comparison_side} px",
        markup=False,
    )
    table = Table(title_justify="left")
    for title, _ in COLUMNS:
        table.add_column(title, justify="left" if title == "stage" else "right")
    for stage in plan.stages:
        cells = [stage.stage] + [f"{getattr(stage, key):,}" for _, key in COLUMNS[1:-1]]
        table.add_row(*cells, duration(stage.seconds))
    stdout.print(table)
    for stage in plan.stages:
        if stage.note:
            stdout.print(f"  {stage.stage}: {stage.note}", markup=False)
    costs = plan.costs
    if costs is not None:
        stdout.print(
            f"unit costs on {costs.device} (one batch): UNet evaluation {costs.unet_evaluation * 1e3:.3g} ms, "
            f"decode {costs.vae_decode * 1e3:.3g} ms, tiled-L2 pair {costs.tiled_l2_comparison * 1e6:.3g} us",
            markup=False,
        )
        if costs.feature_extraction is None:
            stdout.print("  the feature extractor could not be built, so feature extraction is not timed", markup=False)
    device = (
        f", device memory {size(costs.device_memory_bytes)} measured" if costs and costs.device_memory_bytes else ""
    )
    stdout.print(
        f"total: {plan.unet_evaluations:,} UNet evaluations, {duration(plan.seconds)}; "
        f"cache disk {size(plan.disk_bytes)}, host memory ~{size(plan.host_memory_bytes)}{device}",
        markup=False,
    )
