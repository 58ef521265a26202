"""LoRA adapters over a base model: the most common way a fine-tune is shared (a small file, not a model).

Adapters are read through the family's own diffusers loader (``load_lora_weights``), which reads the
diffusers/PEFT and the kohya-ss key layouts, and are fused into the base at their scale, so every check
runs on the model a user of the adapter gets. Checked before any model work, each a named error:
a pickled file (unless --allow-pickle), a format diffusers cannot load (LyCORIS LoHa/LoKr, DoRA),
a family whose pipeline loads no LoRA, an adapter made for another base (shape mismatch), and keys
that would be silently dropped (an adapter layer the base has no module for).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from memaudit.checkpoint.files import SAFE_SUFFIXES, AdapterFile, is_pickle, refuse_pickle, sha256_file
from memaudit.errors import CheckpointError

_UNSUPPORTED = {  # key fragments of formats diffusers' LoRA loaders do not read, and what they are
    "hada_w": "LyCORIS LoHa",
    "lokr_w": "LyCORIS LoKr",
    "dora_scale": "DoRA (magnitude vector)",
    "lora_magnitude_vector": "DoRA (magnitude vector)",
}
_KOHYA_PREFIXES = ("lora_unet_", "lora_te", "lora_transformer_")
_DOWN = re.compile(r"\.(lora_A|lora\.down|lora_down|lora_linear_layer\.down)(\.[^.]+)?\.weight$")


def adapter_layout(path: Path) -> str:
    """The key layout of a safetensors adapter; a format diffusers cannot load is a named error."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
    except (OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"--adapter {path}: not a readable safetensors file ({error})") from error
    for fragment, name in _UNSUPPORTED.items():
        if any(fragment in key for key in keys):
            raise CheckpointError(
                f"--adapter {path}: a {name} adapter; memaudit loads LoRA adapters (diffusers/PEFT or kohya-ss "
                "keys) through diffusers, which cannot read this format. Merge it into the base and scan the result"
            )
    if not keys:
        raise CheckpointError(f"--adapter {path}: holds no tensors")
    return "kohya" if any(key.startswith(_KOHYA_PREFIXES) for key in keys) else "diffusers"


def check_adapter_file(path: Path, *, allow_pickle: bool) -> None:
    if not path.is_file():
        raise CheckpointError(f"--adapter {path}: no such file")
    refuse_pickle(path, allow_pickle=allow_pickle)
    if not is_pickle(path) and path.suffix.lower() not in SAFE_SUFFIXES:
        raise CheckpointError(f"--adapter {path}: expected a .safetensors LoRA file")


def _layers_in(state_dict: dict) -> set[str]:
    """The modules a (diffusers-format) LoRA state dict adapts: one per down/A projection."""
    return {_DOWN.sub("", key) for key in state_dict if _DOWN.search(key)}


def _injected(pipeline, name: str) -> int:
    """How many modules of the pipeline carry the LoRA adapter ``name`` after loading."""
    count = 0
    for part in pipeline.components.values():
        if isinstance(part, torch.nn.Module):
            count += sum(1 for m in part.modules() if name in (getattr(m, "lora_A", None) or {}))
    return count


def fuse_adapters(pipeline, adapters: list[tuple[Path, float]], *, allow_pickle: bool) -> list[AdapterFile]:
    """Load every adapter through the pipeline's own LoRA loader, fuse them at their scales and drop the
    adapter layers, leaving the pipeline as the fused model; records of what was fused."""
    if not adapters:
        return []
    if not hasattr(pipeline, "load_lora_weights"):
        raise CheckpointError(
            f"--adapter: the {type(pipeline).__name__} of diffusers loads no LoRA adapters; merge the adapter into "
            "the base and scan the merged model"
        )
    records, names = [], []
    for index, (path, scale) in enumerate(adapters):
        check_adapter_file(path, allow_pickle=allow_pickle)
        layout = adapter_layout(path) if not is_pickle(path) else "diffusers"
        name = f"adapter_{index}"
        try:
            converted = pipeline.lora_state_dict(str(path))
            expected = _layers_in(converted[0] if isinstance(converted, tuple) else converted)
            pipeline.load_lora_weights(str(path), adapter_name=name)
        except (ValueError, RuntimeError, KeyError, TypeError) as error:
            raise CheckpointError(f"--adapter {path}: does not fit this base ({_first_line(error)})") from error
        found = _injected(pipeline, name)
        if found < len(expected):
            why = "unknown keys; an adapter for another model?"
            if layout == "kohya":  # diffusers converts kohya-ss names for some families only (not SD 3.x)
                why = f"kohya-ss keys that the {type(pipeline).__name__} loader of diffusers does not convert"
            raise CheckpointError(
                f"--adapter {path}: {len(expected) - found} of its {len(expected)} adapted layers match no module "
                f"of this base ({why}); nothing would be scanned for them"
            )
        names.append(name)
        records.append(
            AdapterFile(
                path=str(path), sha256=sha256_file(path), size_bytes=path.stat().st_size, scale=scale, layout=layout
            )
        )
    pipeline.set_adapters(names, adapter_weights=[scale for _, scale in adapters])
    pipeline.fuse_lora(adapter_names=names)
    pipeline.unload_lora_weights()
    return records


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
