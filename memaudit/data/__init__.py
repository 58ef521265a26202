"""Image-caption datasets: manifests, image decoding, digests and data checks."""

from memaudit.data.audit import DataCheckReport, check_datasets
from memaudit.data.columns import DataConfig, data_config
from memaudit.data.dataset import ImageCaptionDataset, conform
from memaudit.data.images import decode_image
from memaudit.data.manifest import Record, read_manifest

__all__ = [
    "DataCheckReport",
    "DataConfig",
    "ImageCaptionDataset",
    "Record",
    "check_datasets",
    "conform",
    "data_config",
    "decode_image",
    "read_manifest",
]
