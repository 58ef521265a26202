"""Image-caption datasets: manifests, image decoding, digests and data checks."""

from memaudit.data.audit import DataCheckReport, check_datasets
from memaudit.data.dataset import ImageCaptionDataset, conform
from memaudit.data.images import decode_image
from memaudit.data.manifest import Record, read_manifest

__all__ = [
    "DataCheckReport",
    "ImageCaptionDataset",
    "Record",
    "check_datasets",
    "conform",
    "decode_image",
    "read_manifest",
]
