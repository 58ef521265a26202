"""The runtime guards: offline Hugging Face libraries and an importable, correct torchvision."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
import torch

from memaudit.runtime.torchvision_ops import nms_reference


def _python(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))} | env
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True, timeout=300
    )
    return result.stdout.strip()


def test_importing_memaudit_makes_the_hub_offline_before_hub_imports():
    assert (
        _python(
            "import memaudit, huggingface_hub.constants as c, os; print(os.environ['HF_HUB_OFFLINE'], c.HF_HUB_OFFLINE)"
        )
        == "1 True"
    )


def test_a_user_choice_of_hf_hub_offline_is_kept():
    assert _python("import memaudit, os; print(os.environ['HF_HUB_OFFLINE'])", HF_HUB_OFFLINE="0") == "0"


def test_hub_imported_before_memaudit_is_switched_offline():
    assert _python("import huggingface_hub.constants as c; import memaudit; print(c.HF_HUB_OFFLINE)") == "True"


def test_heavy_dependencies_import_after_memaudit():
    code = (
        "import memaudit, diffusers, transformers, torchxrayvision, health_multimodal.image;"
        "from diffusers import StableDiffusionPipeline; from transformers import CLIPTextModel; print('ok')"
    )
    assert _python(code) == "ok"


def _naive_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> list[int]:
    """Textbook greedy NMS with plain Python floats: the reference the guard must agree with."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    kept: list[int] = []
    for i in order:
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        ok = True
        for j in kept:
            a1, b1, a2, b2 = (float(v) for v in boxes[j])
            inter = max(0.0, min(x2, a2) - max(x1, a1)) * max(0.0, min(y2, b2) - max(y1, b1))
            union = (x2 - x1) * (y2 - y1) + (a2 - a1) * (b2 - b1) - inter
            if inter / union > threshold:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


def test_torchvision_nms_agrees_with_a_direct_reference_on_random_boxes():
    import torchvision

    generator = torch.Generator().manual_seed(0)
    for trial in range(20):
        count = 1 + trial * 5
        corners = torch.rand(count, 2, generator=generator) * 100
        sizes = torch.rand(count, 2, generator=generator) * 40 + 1
        boxes = torch.cat([corners, corners + sizes], dim=1)
        scores = torch.rand(count, generator=generator)
        threshold = float(torch.rand(1, generator=generator)) * 0.8 + 0.1
        expected = _naive_nms(boxes, scores, threshold)
        assert torchvision.ops.nms(boxes, scores, threshold).tolist() == expected
        assert nms_reference(boxes, scores, threshold).tolist() == expected


def test_batched_nms_keeps_classes_apart():
    import torchvision

    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 11, 11]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    classes = torch.tensor([0, 1, 0])
    assert sorted(torchvision.ops.batched_nms(boxes, scores, classes, 0.5).tolist()) == [0, 1]


def test_no_cuda_packages_are_installed():
    from importlib.metadata import distributions

    names = {dist.metadata["Name"].lower() for dist in distributions()}
    assert not {name for name in names if name.startswith(("nvidia", "triton")) or "cuda" in name}


_IN_HEAP = (
    "import memaudit, ctypes; from memaudit.runtime import allocator; "
    "address = ctypes.addressof(ctypes.create_string_buffer(64 << 20)); "
    "heap = [line.split()[0].split('-') for line in open('/proc/self/maps') if line.rstrip().endswith('[heap]')]; "
    "print(allocator.tuned, any(int(a, 16) <= address < int(b, 16) for a, b in heap))"
)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_large_blocks_come_from_the_heap_not_a_fresh_memory_map():
    assert _python(_IN_HEAP) == "True True"  # 64 MiB from the heap
    assert _python(_IN_HEAP, MEMAUDIT_MALLOC="default") == "False False"  # glibc's own: a memory map of its own
    assert _python(_IN_HEAP, MALLOC_TRIM_THRESHOLD_="1048576").startswith("False")  # the user's choice stays
