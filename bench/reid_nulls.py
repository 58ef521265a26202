"""The patient count test's nulls on a model's images, measured by bench/reid_identity.py: one control model's
images (the check's own hypergeometric test, ``metrics.patient_counts``), or two controls' with the
model-to-model spread fitted (``dirichlet_named``). A control named against other controls is a false name.
Not a bench script of its own.
"""

from __future__ import annotations

import math
from collections import Counter

from scipy import optimize, stats

from memaudit.metrics.patient_counts import named_by_count, patient_counts, tarone_filter
from memaudit.metrics.tail import benjamini_hochberg

ALPHA = 0.01  # the shipped policies' family level


def nulls(attributed: dict[str, list[str]], *, frequent: list[str]) -> dict:
    """Who each null names: one control's images (the check's hypergeometric test), and two controls' with
    their spread fitted (``dirichlet_named``); a control named against other controls is a false name."""
    controls = [name for name in attributed if name.startswith("control")]
    one = {
        f"{model} vs {reference}": _named(one_reference_named(attributed[model], attributed[reference]), frequent)
        for model in attributed
        for reference in controls
        if model != reference
    }
    two = {}
    for model in attributed:
        others = [name for name in controls if name != model]
        for first, second in ((a, b) for i, a in enumerate(others) for b in others[i + 1 :]):
            concentration, named = dirichlet_named(attributed[model], attributed[first], attributed[second], ALPHA)
            two[f"{model} vs {first}+{second}"] = _named(named, frequent) | {"concentration": round(concentration, 2)}
    return {"one_reference": one, "two_references": two}


def one_reference_named(model: list[str], reference: list[str]) -> list[str]:
    """Patients the check's own count test names with one reference's images as its null."""
    return [count.patient for count in named_by_count(patient_counts(model, reference), ALPHA)[0]]


def dirichlet_named(model: list[str], first: list[str], second: list[str], alpha: float) -> tuple[float, list[str]]:
    """Patients drawing more of ``model``'s images than two references' (equal-sized samples; each entry an
    image's patient): per patient the three counts are a Dirichlet-multinomial split of their sum with equal
    concentration r (gamma-Poisson counts whose patient-specific scale cancels), r fitted by maximum likelihood
    on the two references' splits alone; the model's tail p-value, Tarone's filter and Benjamini-Hochberg at
    ``alpha``. Returns (r, named patients)."""
    if not len(model) == len(first) == len(second):
        raise ValueError("the three samples must be the same size")
    counts = [Counter(sample) for sample in (model, first, second)]
    everyone = sorted(set().union(*counts))
    pairs = [(counts[1][p], counts[1][p] + counts[2][p]) for p in everyone if counts[1][p] + counts[2][p]]

    def loss(log_r: float) -> float:
        r = math.exp(log_r)
        return -sum(float(stats.betabinom.logpmf(k, n, r, r)) for k, n in pairs)

    r = math.exp(optimize.minimize_scalar(loss, bounds=(-6.0, 12.0), method="bounded").x)
    totals = [sum(c[p] for c in counts) for p in everyone]
    p_values = [float(stats.betabinom.sf(counts[0][p] - 1, n, r, 2 * r)) for p, n in zip(everyone, totals, strict=True)]
    least = [float(stats.betabinom.pmf(n, n, r, 2 * r)) for n in totals]
    kept = [i for i, keep in enumerate(tarone_filter(least, alpha)) if keep]
    selected = benjamini_hochberg([p_values[i] for i in kept], alpha) if kept else []
    return r, [everyone[i] for i, keep in zip(kept, selected, strict=True) if keep]


def _named(ids: list[str], frequent: list[str]) -> dict:
    return {"named": len(ids), "named_frequent": sum(p in frequent for p in ids), "ids": ids[:12]}
