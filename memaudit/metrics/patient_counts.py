"""How many scored images a training patient draws, against how many holdout images it draws.

The verifier attributes every image to its most likely training patient. One image of an unseen patient
is attributed to someone too, so one attribution proves nothing; but a model that learned a patient
generates that patient again and again, and a patient drawing more of the scored images than unseen
patients' images would give them is the finding. If the m scored images are images of unseen patients,
they and the n holdout images are exchangeable: of the t + k images a patient draws among all n + m, the
number that fall among the scored ones is hypergeometric, whatever the verifier and the patient. The
p-value P(X >= t) is exact; the Benjamini-Hochberg step-up (``metrics.tail``) names them, like extraction's
count test names copies a p-value per image cannot resolve.

Which patients enter the step-up: a patient drawing d images in all can reach no p-value below P(X = d) (all d
among the scored), and a training archive of thousands of patients has most of them drawn once or twice, with
p-values that can never be significant but would each raise the bar for the rest. Tarone's filter (Tarone 1990,
with Benjamini-Hochberg as Gilbert 2005 pairs them for discrete tests) keeps only the K patients able to reach
alpha / K, for the smallest K that holds for; it reads the totals d alone, which the null leaves free (the
hypergeometric is the split's law given d), so the p-values of the kept patients stay exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb

from memaudit.metrics.tail import benjamini_hochberg


@dataclass(frozen=True)
class PatientCount:
    patient: str
    scored: int  # scored images attributed to the patient (t)
    holdout: int  # holdout images attributed to the patient (k)
    p_value: float  # P(X >= t), X hypergeometric: t + k of n + m drawn, m of them scored
    least_p_value: float  # P(X = min(t + k, m)): the smallest p-value t + k draws in all can reach


def draw_tail(drawn: int, *, scored_draws: int, scored: int, holdout: int) -> float:
    """P(X >= scored_draws) for X the scored images among ``drawn`` taken at random from ``scored + holdout``."""
    if not 0 <= scored_draws <= min(drawn, scored) or drawn > scored + holdout:
        raise ValueError(f"impossible counts: {scored_draws} of {drawn} drawn, {scored} scored, {holdout} holdout")
    total = comb(scored + holdout, drawn)
    upper = min(drawn, scored)
    return sum(comb(scored, x) * comb(holdout, drawn - x) for x in range(scored_draws, upper + 1)) / total


def least_tail(drawn: int, *, scored: int, holdout: int) -> float:
    """The smallest p-value ``drawn`` draws in all can reach: as many of them among the scored as fit."""
    return draw_tail(drawn, scored_draws=min(drawn, scored), scored=scored, holdout=holdout)


def patient_counts(scored: list[str], holdout: list[str]) -> list[PatientCount]:
    """Per patient any image is attributed to (``scored``: each scored image's patient, ``holdout``: each
    holdout image's), its counts, p-value and least reachable p-value, in patient order."""
    drawn, null = Counter(scored), Counter(holdout)
    sizes = {"scored": len(scored), "holdout": len(holdout)}
    return [
        PatientCount(
            patient=patient,
            scored=drawn[patient],
            holdout=null[patient],
            p_value=draw_tail(drawn[patient] + null[patient], scored_draws=drawn[patient], **sizes),
            least_p_value=least_tail(drawn[patient] + null[patient], **sizes),
        )
        for patient in sorted(drawn | null)
    ]


def tarone_filter(least_p_values: Sequence[float], alpha: float) -> list[bool]:
    """Tarone's filter: for the smallest K such that at most K tests can reach ``alpha`` / K, those tests
    (in input order). K = the number of tests always qualifies, so the filter never keeps more than BH sees."""
    for k in range(1, len(least_p_values) + 1):
        kept = [least <= alpha / k for least in least_p_values]
        if sum(kept) <= k:
            return kept
    return []


def named_by_count(counts: list[PatientCount], alpha: float) -> tuple[list[PatientCount], int]:
    """The patients the count test names at false-discovery level ``alpha`` (Benjamini-Hochberg over the
    patients Tarone's filter keeps), and how many it kept: the patients the test could have named."""
    reachable = tarone_filter([count.least_p_value for count in counts], alpha)
    kept = [count for count, keep in zip(counts, reachable, strict=True) if keep]
    named = benjamini_hochberg([count.p_value for count in kept], alpha) if kept else []
    return [count for count, keep in zip(kept, named, strict=True) if keep], len(kept)
