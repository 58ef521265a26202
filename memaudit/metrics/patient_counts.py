"""How many scored images a training patient draws, against how many holdout images it draws.

The verifier attributes every image to its most likely training patient. One image of an unseen patient
is attributed to someone too, so one attribution proves nothing; but a model that learned a patient
generates that patient again and again, and a patient drawing more of the scored images than unseen
patients' images would give them is the finding. If the m scored images are images of unseen patients,
they and the n holdout images are exchangeable: of the t + k images a patient draws among all n + m, the
number that fall among the scored ones is hypergeometric, whatever the verifier and the patient. The
p-value P(X >= t) is exact; the Benjamini-Hochberg step-up over the patients drawn (``metrics.tail``)
names them, like extraction's count test names copies a p-value per image cannot resolve.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from math import comb


@dataclass(frozen=True)
class PatientCount:
    patient: str
    scored: int  # scored images attributed to the patient (t)
    holdout: int  # holdout images attributed to the patient (k)
    p_value: float  # P(X >= t), X hypergeometric: t + k of n + m drawn, m of them scored


def draw_tail(drawn: int, *, scored_draws: int, scored: int, holdout: int) -> float:
    """P(X >= scored_draws) for X the scored images among ``drawn`` taken at random from ``scored + holdout``."""
    if not 0 <= scored_draws <= min(drawn, scored) or drawn > scored + holdout:
        raise ValueError(f"impossible counts: {scored_draws} of {drawn} drawn, {scored} scored, {holdout} holdout")
    total = comb(scored + holdout, drawn)
    upper = min(drawn, scored)
    return sum(comb(scored, x) * comb(holdout, drawn - x) for x in range(scored_draws, upper + 1)) / total


def patient_counts(scored: list[str], holdout: list[str]) -> list[PatientCount]:
    """Per patient the scored images are attributed to (``scored``: each scored image's patient, ``holdout``:
    each holdout image's), its counts and p-value, in patient order."""
    drawn, null = Counter(scored), Counter(holdout)
    return [
        PatientCount(
            patient=patient,
            scored=drawn[patient],
            holdout=null[patient],
            p_value=draw_tail(
                drawn[patient] + null[patient], scored_draws=drawn[patient], scored=len(scored), holdout=len(holdout)
            ),
        )
        for patient in sorted(drawn)
    ]
