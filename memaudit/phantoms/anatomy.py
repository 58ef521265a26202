"""Draw one frontal chest phantom: thorax, lungs, heart and mediastinum, diaphragm, ribs, clavicles,
spine, and optional findings, as a float image in [0, 1] (bright = dense, as on a radiograph).

Everything is soft-edged geometry on a normalised grid (-1..1), so any resolution works.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FINDINGS = ("effusion", "consolidation", "cardiomegaly", "pneumothorax", "nodule", "device")


@dataclass(frozen=True)
class Patient:
    """Per-patient anatomy and acquisition; every field is drawn from the patient's own seed."""

    thorax_width: float
    thorax_height: float
    shift_x: float
    shift_y: float
    lung_width: float
    lung_height: float
    heart_width: float
    diaphragm_left: float
    diaphragm_right: float
    rib_spacing: float
    rib_phase: float
    exposure: float
    gamma: float
    noise: float
    findings: dict[str, dict] = field(default_factory=dict)


def _soft(distance: np.ndarray, edge: float) -> np.ndarray:
    """1 inside (distance < 0), 0 outside, with a smooth edge of width ``edge``."""
    return 1.0 / (1.0 + np.exp(np.clip(distance / edge, -40, 40)))


def _ellipse(x, y, *, centre: tuple[float, float], radii: tuple[float, float], edge: float = 0.03):
    (cx, cy), (rx, ry) = centre, radii
    return _soft(np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2) - 1.0, edge)


def markings(size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random texture in [-0.5, 0.5]: white noise blurred by a separable box filter, twice."""
    texture = rng.standard_normal((size, size))
    width = max(1, size // 24)
    kernel = np.ones(2 * width + 1) / (2 * width + 1)
    for _ in range(2):
        texture = np.apply_along_axis(np.convolve, 0, texture, kernel, mode="same")
        texture = np.apply_along_axis(np.convolve, 1, texture, kernel, mode="same")
    texture /= np.abs(texture).max() + 1e-9
    return 0.5 * texture


def draw(patient: Patient, size: int, rng: np.random.Generator, *, texture: np.ndarray | None = None) -> np.ndarray:
    """The phantom at ``size`` x ``size``; ``rng`` draws the acquisition noise and, unless ``texture`` (a
    patient's own vessel pattern, ``markings``) is given, the lung texture."""
    axis = np.linspace(-1.0, 1.0, size)
    x, y = np.meshgrid(axis, axis)  # y grows downwards, as image rows do
    x, y = x - patient.shift_x, y - patient.shift_y
    image = np.full((size, size), 0.04)
    body = _ellipse(x, y, centre=(0.0, 0.05), radii=(patient.thorax_width, patient.thorax_height), edge=0.04)
    image += 0.34 * body
    image += 0.18 * _soft(np.abs(x) - 0.07, 0.02) * body  # spine
    lungs = np.zeros_like(image)
    for side, dome in ((-1, patient.diaphragm_right), (1, patient.diaphragm_left)):
        # patient's right lung on the image's left
        cx = side * patient.lung_width * 0.55
        lung = _ellipse(x, y, centre=(cx, -0.05), radii=(patient.lung_width * 0.42, patient.lung_height), edge=0.04)
        lung *= _soft(y - (dome - 0.18 * (x - cx) ** 2 / patient.lung_width), 0.02)  # dome-shaped base
        lungs = np.maximum(lungs, lung)
    image -= 0.30 * lungs
    # posterior ribs: arcs rising towards the spine
    ribs = 0.5 + 0.5 * np.cos(2 * np.pi * (y - 0.45 * x**2 + 0.2 * np.abs(x)) / patient.rib_spacing + patient.rib_phase)
    image += 0.08 * _soft(0.80 - ribs, 0.03) * lungs
    if texture is None:
        texture = markings(size, rng)
    image += 0.10 * texture * lungs  # vessels and interstitium: smooth, patient-specific texture
    image += 0.2 * _soft(np.abs(y + 0.6 + 0.1 * np.abs(x) - 0.3 * x**2) - 0.022, 0.008) * body  # clavicles
    heart_width = patient.heart_width * (1.35 if "cardiomegaly" in patient.findings else 1.0)
    heart = _ellipse(x, y, centre=(0.12, 0.30), radii=(heart_width, 0.30), edge=0.05)
    image = np.maximum(image, 0.50 * heart * body + image * (1 - heart))
    image += 0.22 * _soft(np.abs(x - 0.02) - 0.10, 0.03) * _soft(-(y + 0.7), 0.05) * _soft(y - 0.2, 0.05)
    image = _findings(image, x, y, patient=patient, lungs=lungs)
    image = np.clip(image * patient.exposure, 0, 1) ** patient.gamma
    image += rng.normal(0.0, patient.noise, image.shape)
    return np.clip(image, 0.0, 1.0)


def _findings(image, x, y, *, patient: Patient, lungs):
    found = patient.findings
    if "effusion" in found:
        side = found["effusion"]["side"]
        level = found["effusion"]["level"]
        region = _soft(-(y - level), 0.03) * _soft(-side * x, 0.02)  # below the meniscus, that side
        image += 0.28 * region * lungs
    if "consolidation" in found:
        spot = found["consolidation"]
        image += (
            0.22 * _ellipse(x, y, centre=(spot["x"], spot["y"]), radii=(spot["r"], spot["r"] * 0.8), edge=0.06) * lungs
        )
    if "pneumothorax" in found:
        side = found["pneumothorax"]["side"]
        cap = _soft(y + 0.35, 0.03) * _soft(-side * x - 0.25, 0.02) * lungs  # apical, lateral: no markings
        image -= 0.09 * cap
    if "nodule" in found:
        spot = found["nodule"]
        image += 0.30 * _ellipse(x, y, centre=(spot["x"], spot["y"]), radii=(spot["r"], spot["r"]), edge=0.01)
    if "device" in found:
        image += 0.35 * _soft(np.abs(x - 0.02 - 0.05 * (y + 1)) - 0.012, 0.004) * _soft(y - 0.05, 0.01)  # tube
        if found["device"].get("pacemaker"):
            image += 0.45 * _soft(np.maximum(np.abs(x + 0.55) - 0.08, np.abs(y + 0.55) - 0.05), 0.005)
    return image
