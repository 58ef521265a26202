"""Evidence plots as self-contained PNG data URIs (matplotlib, Agg): one per check, from a ScanResult."""

from __future__ import annotations

import base64
import io

from memaudit.results.scan_result import AttackedPrompt, PromptScore, ScanResult

COLOURS = {"train": "#c0392b", "holdout": "#2c7fb8", "generated": "#c0392b", "line": "#222222"}


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 2.8), dpi=110)
    axes.spines[["top", "right"]].set_visible(False)
    return plt, figure, axes


def png_data_uri(png: bytes) -> str:
    """PNG bytes as a data URI, so that an HTML report is one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _data_uri(plt, figure) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return png_data_uri(buffer.getvalue())


def _bins(*series: list[float], count: int = 30) -> list[float]:
    values = [v for s in series for v in s]
    low, high = min(values), max(values)
    if high <= low:
        high = low + 1e-9
    return [low + (high - low) * i / count for i in range(count + 1)]


def attack_reach(train: list[PromptScore], attacked: list[AttackedPrompt]) -> tuple[float, int] | None:
    """(lowest score, count) of the training prompts the extraction attack took by score (flagged or
    ranked); None when it took none by score."""
    by_score = {a.item_ids[0] for a in attacked if a.reason in ("flagged", "ranked") and a.item_ids}
    scores = [p.score for p in train if p.item_ids and p.item_ids[0] in by_score]
    return (min(scores), len(scores)) if scores else None


def noise_magnitude_plot(result: ScanResult) -> str | None:
    check = result.checks.get("noise_magnitude")
    if check is None or check.noise_magnitude is None:
        return None
    evidence = check.noise_magnitude
    train = [p.score for p in evidence.train]
    extraction = result.checks.get("extraction")
    reach = (
        attack_reach(evidence.train, extraction.extraction.attacked) if extraction and extraction.extraction else None
    )
    plt, figure, axes = _figure()
    bins = _bins(train, evidence.holdout_scores, [evidence.threshold])
    axes.hist(evidence.holdout_scores, bins=bins, alpha=0.6, color=COLOURS["holdout"], label="holdout prompts")
    axes.hist(train, bins=bins, alpha=0.6, color=COLOURS["train"], label="training prompts")
    axes.axvline(
        evidence.threshold,
        color=COLOURS["line"],
        linestyle="--",
        label=f"flag threshold (holdout q={evidence.calibration_quantile:g})",
    )
    if reach is not None:
        axes.axvline(reach[0], color=COLOURS["line"], linestyle=":", label=f"attacked by score: the top {reach[1]:,}")
    axes.set_xlabel("text-conditional noise magnitude" if evidence.detector == "wen" else f"{evidence.detector} score")
    axes.set_ylabel("prompts")
    axes.legend(fontsize=8, framealpha=0.92, edgecolor="#dddddd")
    return _data_uri(plt, figure)


def nearest_neighbour_plot(result: ScanResult) -> str | None:
    check = result.checks.get("nearest_neighbour")
    if check is None or check.nearest_neighbour is None:
        return None
    evidence = check.nearest_neighbour
    plt, figure, axes = _figure()
    bins = _bins(evidence.generated_min_distances, evidence.holdout_min_distances, [evidence.tau])
    axes.hist(
        evidence.holdout_min_distances,
        bins=bins,
        alpha=0.6,
        color=COLOURS["holdout"],
        density=True,
        label="holdout image to nearest training image",
    )
    axes.hist(
        evidence.generated_min_distances,
        bins=bins,
        alpha=0.6,
        color=COLOURS["generated"],
        density=True,
        label="generated image to nearest training image",
    )
    axes.axvline(
        evidence.tau, color=COLOURS["line"], linestyle="--", label=f"tau (holdout q={evidence.near_copy_quantile:g})"
    )
    axes.set_xlabel(f"cosine distance ({evidence.extractor} features)")
    axes.set_ylabel("density")
    axes.legend(fontsize=8, framealpha=0.92, edgecolor="#dddddd")
    return _data_uri(plt, figure)


def clique_plot(result: ScanResult) -> str | None:
    check = result.checks.get("extraction")
    if check is None or check.extraction is None or not check.extraction.attacked:
        return None
    evidence = check.extraction
    if all(a.reason == "image" for a in evidence.attacked):
        return None  # image-folder audits have no cliques
    plt, figure, axes = _figure()
    sizes = [a.clique_size for a in evidence.attacked]
    colours = [COLOURS["train"] if a.extracted else COLOURS["holdout"] for a in evidence.attacked]
    axes.bar(range(len(sizes)), sizes, color=colours)
    axes.axhline(
        evidence.min_clique, color=COLOURS["line"], linestyle="--", label=f"min clique ({evidence.min_clique})"
    )
    axes.set_xlabel("attacked prompt (red: a training image was extracted)")
    axes.set_ylabel(f"largest clique of {evidence.generations}")
    axes.legend(fontsize=8, framealpha=0.92, edgecolor="#dddddd")
    return _data_uri(plt, figure)


def membership_plot(result: ScanResult) -> str | None:
    check = result.checks.get("membership")
    if check is None or check.membership is None:
        return None
    train = [item.score for item in check.membership.train]
    holdout = [item.score for item in check.membership.holdout]
    plt, figure, axes = _figure()
    bins = _bins(train, holdout, [])
    axes.hist(holdout, bins=bins, alpha=0.6, color=COLOURS["holdout"], label="holdout studies", density=True)
    axes.hist(train, bins=bins, alpha=0.6, color=COLOURS["train"], label="training studies", density=True)
    axes.set_xlabel("membership score (higher: looks like a training study)")
    axes.set_ylabel("share of studies")
    axes.legend(fontsize=8, framealpha=0.92, edgecolor="#dddddd")
    return _data_uri(plt, figure)


def all_plots(result: ScanResult) -> dict[str, str]:
    plots = {
        "noise_magnitude": noise_magnitude_plot(result),
        "nearest_neighbour": nearest_neighbour_plot(result),
        "extraction": clique_plot(result),
        "membership": membership_plot(result),
    }
    return {name: uri for name, uri in plots.items() if uri}
