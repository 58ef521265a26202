"""The registry of feature extractors by name: the one table of what `extractor:` in a policy may say."""

from __future__ import annotations

from collections.abc import Callable

from memaudit.features.base import ExtractorOptions, ExtractorUnavailable, FeatureExtractor
from memaudit.features.pixels import PixelFeatures
from memaudit.features.rad_dino import RadDinoFeatures
from memaudit.features.xrv_densenet import XrvDenseNetFeatures

EXTRACTORS: dict[str, Callable[[ExtractorOptions], FeatureExtractor]] = {
    "pixels": lambda options: PixelFeatures(),
    "xrv-densenet121": XrvDenseNetFeatures,
    "rad-dino": RadDinoFeatures,
}


def extractor_names() -> list[str]:
    return sorted(EXTRACTORS)


def create_extractor(name: str, options: ExtractorOptions | None = None) -> FeatureExtractor:
    if name not in EXTRACTORS:
        raise ExtractorUnavailable(f"unknown feature extractor '{name}'; available: {', '.join(extractor_names())}")
    return EXTRACTORS[name](options or ExtractorOptions())
