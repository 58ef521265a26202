"""Plots of a remediation: the Pareto front of the search, and the chosen mask over the UNet blocks."""

from __future__ import annotations

from memaudit.render.plots import _data_uri, _figure
from memaudit.results.remediation_result import TrialRecord


def pareto_plot(trials: list[TrialRecord], chosen: int | None) -> str | None:
    done = [t for t in trials if t.memorization is not None and t.fid is not None]
    if not done:
        return None
    plt, figure, axes = _figure()
    others = [t for t in done if not t.pareto]
    front = sorted((t for t in done if t.pareto), key=lambda t: t.memorization)
    axes.scatter([t.memorization for t in others], [t.fid for t in others], s=14, color="#9aa5b1", label="trial")
    axes.plot(
        [t.memorization for t in front],
        [t.fid for t in front],
        "o-",
        color="#2c7fb8",
        markersize=5,
        label="Pareto front",
    )
    for trial in done:
        if trial.number == chosen:
            axes.scatter(
                [trial.memorization],
                [trial.fid],
                s=120,
                facecolors="none",
                edgecolors="#c0392b",
                linewidths=2,
                label="chosen",
            )
    axes.ticklabel_format(useOffset=False)
    axes.set_xlabel("memorization: mean noise magnitude on D_mem (lower is better)")
    axes.set_ylabel("FID on holdout (lower is better)")
    axes.legend(fontsize=8, framealpha=0.92, edgecolor="#dddddd")
    return _data_uri(plt, figure)


def mask_heatmap(blocks: list[str], chosen_bits: str, front_masks: list[str]) -> str:
    """Row 1: the chosen mask; row 2: how often each block is trained across the Pareto front."""
    plt, figure, axes = _figure()
    chosen = [float(bit) for bit in chosen_bits]
    share = [
        sum(mask[i] == "1" for mask in front_masks) / len(front_masks) if front_masks else 0.0
        for i in range(len(blocks))
    ]
    image = axes.imshow([chosen, share], cmap="Blues", vmin=0, vmax=1, aspect="auto")
    labels = [
        name.replace("attentions.", "a")
        .replace(".transformer_blocks.", ".t")
        .replace("_blocks.", "")
        .replace("_block.", "")
        for name in blocks
    ]
    axes.set_xticks(range(len(blocks)), labels, rotation=60, ha="right", fontsize=7)
    axes.set_yticks([0, 1], ["chosen mask", "share of front"], fontsize=8)
    figure.colorbar(image, ax=axes, fraction=0.03)
    return _data_uri(plt, figure)
