"""Feature extractors by name (registry), for nearest-neighbour distances and FID."""

from memaudit.features.base import ExtractorOptions, ExtractorUnavailable, FeatureExtractor, extract_features
from memaudit.features.registry import EXTRACTORS, create_extractor, extractor_names

__all__ = [
    "EXTRACTORS",
    "ExtractorOptions",
    "ExtractorUnavailable",
    "FeatureExtractor",
    "create_extractor",
    "extract_features",
    "extractor_names",
]
