"""A verifier's folder: ``config.json`` (architecture, input side, normalisation, provenance) and
``model.safetensors``. Pickled weights are never read here (a pickle runs code when loaded): a folder
comes from ``memaudit reid train``, or from ``memaudit weights convert --allow-pickle`` for a published
verifier (memaudit/reid/convert.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import ValidationError

from memaudit.atomic_files import write_atomic
from memaudit.checkpoint.files import PICKLE_SUFFIXES, sha256_file
from memaudit.errors import MemauditError
from memaudit.reid.network import Verifier, VerifierConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class VerifierError(MemauditError):
    """A verifier folder that cannot be used as given."""


@dataclass(frozen=True)
class LoadedVerifier:
    network: Verifier
    folder: Path
    sha256: str  # of model.safetensors: part of every score's provenance


def save_verifier(network: Verifier, folder: Path) -> Path:
    """Write ``network`` into ``folder`` (config first, the weights file last: a folder with weights is whole)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / CONFIG_FILE, network.config.model_dump_json(indent=2) + "\n")
    staged = folder / f".{WEIGHTS_FILE}.partial"
    save_file({name: tensor.detach().contiguous().cpu() for name, tensor in network.state_dict().items()}, staged)
    staged.replace(folder / WEIGHTS_FILE)
    return folder


def read_config(folder: Path) -> VerifierConfig:
    """The folder's config, or an error naming the folder and what is wrong (before any weights are read)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VerifierError(
            f"{folder}: no verifier folder there (make one with `memaudit reid train`, or convert a published "
            "verifier with `memaudit weights convert`)"
        )
    path = folder / CONFIG_FILE
    try:
        return VerifierConfig.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise VerifierError(f"{path}: cannot read the verifier's config ({error.strerror or error})") from error
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in error.errors())
        raise VerifierError(f"{path}: not a verifier config: {problems}") from error


def load_verifier(folder: Path, *, device: str = "cpu") -> LoadedVerifier:
    """The verifier in ``folder``, in eval mode; pickled weights are refused, naming why."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise VerifierError(
                f"{folder}: holds pickled weights ({', '.join(pickles)}), which memaudit does not load (a pickle "
                "runs code when loaded); a verifier folder holds model.safetensors, as `memaudit reid train` writes "
                "it, or `memaudit weights convert --allow-pickle FILE --out DIR` makes from a published verifier"
            )
        raise VerifierError(f"{weights}: the verifier's weights are missing")
    network = Verifier(config)
    state = load_file(weights)
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[1:2] or [str(error)]
        raise VerifierError(
            f"{weights}: does not fit its config ({config.architecture}): {first[0].strip()}"
        ) from error
    return LoadedVerifier(network=network.to(device).eval(), folder=folder, sha256=sha256_file(weights))


@torch.no_grad()
def embed_images(network: Verifier, images: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
    """Embeddings of ``[N, C, H, W]`` images in [0, 1], resized to the verifier's input first."""
    from memaudit.data import conform

    config, device = network.config, next(network.parameters()).device
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        batch = [
            conform(image, size=config.input_side, channels=config.channels)
            for image in images[start : start + batch_size]
        ]
        chunks.append(network.embed(torch.stack(batch).to(device)).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, config.embedding_dim)
