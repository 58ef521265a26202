"""Feature extractors by name (registry), for nearest-neighbour distances and FID."""

from memaudit.features.base import (
    EXTRACTORS,
    ExtractorOptions,
    ExtractorUnavailable,
    FeatureExtractor,
    create_extractor,
    extract_features,
    extractor_names,
)

__all__ = [
    "EXTRACTORS",
    "ExtractorOptions",
    "ExtractorUnavailable",
    "FeatureExtractor",
    "create_extractor",
    "extract_features",
    "extractor_names",
]
