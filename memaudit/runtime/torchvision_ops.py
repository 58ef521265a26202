"""Register a pure-torch ``torchvision::nms`` when torchvision's compiled ops cannot load.

torchvision registers fake kernels for ``torchvision::nms`` at import time; if its ``_C`` extension
does not match the installed torch (a CPU torch beside a CUDA-built torchvision wheel), that
registration raises and *every* import that touches torchvision fails, transformers and diffusers
included. Defining the two operators it needs, backed by a plain torch implementation, makes the
import work and keeps ``torchvision.ops.nms`` correct. Nothing is changed when the extension loads.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

# Schemas as torchvision's C++ extension declares them.
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}

_library: torch.library.Library | None = None  # kept alive: dropping it unregisters the ops


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression over ``[N, 4]`` xyxy boxes; indices kept, by score descending.

    Same contract as ``torchvision.ops.nms``: a box is dropped when its IoU with an already kept,
    higher-scoring box is strictly greater than ``iou_threshold``.
    """
    if boxes.dim() != 2 or boxes.size(1) != 4:
        raise ValueError(f"boxes must have shape [N, 4], got {tuple(boxes.shape)}")
    if scores.dim() != 1 or scores.size(0) != boxes.size(0):
        raise ValueError(f"scores must have shape [{boxes.size(0)}], got {tuple(scores.shape)}")
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    boxes = boxes.float() if not boxes.is_floating_point() else boxes
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort(descending=True, stable=True)
    suppressed = torch.zeros(boxes.size(0), dtype=torch.bool, device=boxes.device)
    keep: list[int] = []
    for position in range(order.numel()):
        i = int(order[position])
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[position + 1 :]
        width = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        height = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        intersection = width * height
        iou = intersection / (areas[i] + areas[rest] - intersection)
        suppressed[rest[iou > iou_threshold]] = True
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def _compiled_ops_load() -> bool:
    """Whether torchvision's own ``_C`` extension loads into this torch (or there is no torchvision)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True
    package = Path(next(iter(spec.submodule_search_locations)))
    candidates = sorted(package.glob("_C*.so")) + sorted(package.glob("_C*.pyd"))
    if not candidates:
        return False
    try:
        torch.ops.load_library(str(candidates[0]))
    except (OSError, RuntimeError):
        return False
    return True


def install_torchvision_ops_guard() -> bool:
    """Install the pure-torch operators if needed; returns True when they were installed."""
    global _library
    if _library is not None:
        return True
    if "torchvision" in sys.modules or _compiled_ops_load():
        return False
    library = torch.library.Library("torchvision", "DEF")
    for name, schema in _SCHEMAS.items():
        library.define(schema)
        library.impl(name, nms_reference, "CompositeExplicitAutograd")
    _library = library
    _patch_python_check_after_import()
    return True


def _patch_python_check_after_import() -> None:
    """Let ``torchvision.ops.nms`` reach the operator: it first asserts that ``_C`` loaded.

    Other compiled ops (roi_align, deform_conv2d) stay missing and fail with torch's
    "no such operator torchvision::..." error when called.
    """
    import torchvision.ops.boxes as boxes

    boxes._assert_has_ops = lambda: None
