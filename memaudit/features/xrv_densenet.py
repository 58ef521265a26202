"""`xrv-densenet121`: torchxrayvision's DenseNet-121, pooled 1024-d features (as MemControl used).

Input: one channel, 224 x 224, scaled to [-1024, 1024] as torchxrayvision expects. Weights come from
a local file (``.safetensors`` state dict, or a torchxrayvision ``.pt`` with --allow-pickle) or
torchxrayvision's own cache folder; nothing is downloaded. Without weights it refuses to run.
"""

from __future__ import annotations

from pathlib import Path

import torch

from memaudit.checkpoint.files import is_pickle, refuse_pickle, sha256_file
from memaudit.data.dataset import conform
from memaudit.features.base import ExtractorOptions, ExtractorUnavailable

WEIGHTS_NAME = "densenet121-res224-all"
INPUT_SIDE = 224


def default_weights_path() -> Path:
    """Where torchxrayvision keeps this model's weights once downloaded (by the user, elsewhere)."""
    import torchxrayvision as xrv

    url = xrv.models.model_urls[WEIGHTS_NAME]["weights_url"]
    return Path(xrv.utils.get_cache_dir()) / Path(url).name


def _load_state(path: Path, allow_pickle: bool) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ExtractorUnavailable(f"xrv-densenet121 weights not found: {path}")
    refuse_pickle(path, allow_pickle=allow_pickle)
    if is_pickle(path):
        loaded = torch.load(path, map_location="cpu", weights_only=False)
        return loaded.state_dict() if isinstance(loaded, torch.nn.Module) else loaded
    from safetensors.torch import load_file

    return load_file(str(path))


class XrvDenseNetFeatures:
    name = "xrv-densenet121"
    feature_dim = 1024

    def __init__(self, options: ExtractorOptions) -> None:
        import torchxrayvision as xrv

        self.model = xrv.models.DenseNet(weights=None, num_classes=18)
        path = options.weights or default_weights_path()
        if options.weights is None and not path.is_file():
            if not options.allow_random_weights:
                raise ExtractorUnavailable(
                    f"xrv-densenet121 has no weights: give checks.nearest_neighbour.extractor_weights (a local "
                    f"file) or place {path.name} in {path.parent}; memaudit never downloads weights and never "
                    "runs an extractor with random weights"
                )
            self.weights_digest = "random"
        else:
            state = _load_state(path, options.allow_pickle)
            missing, unexpected = self.model.load_state_dict(state, strict=False)
            if [key for key in missing if key.startswith("features.")] or unexpected:
                raise ExtractorUnavailable(
                    f"{path}: not DenseNet-121 weights (missing {missing[:3]}, unexpected {unexpected[:3]})"
                )
            self.weights_digest = sha256_file(path)
        self.model.eval().to(options.device)
        self.device = options.device

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        gray = conform(image, size=INPUT_SIDE, channels=1)
        return (gray * 2.0 - 1.0) * 1024.0

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        features = self.model.features(inputs.to(self.device))
        return torch.nn.functional.adaptive_avg_pool2d(torch.relu(features), 1).flatten(1)
