"""Published patient verifiers as verifier folders (``memaudit weights convert``).

Packhäuser et al.'s verification network (Scientific Reports 2022) and CheXGenBench's MIMIC-CXR
re-identification model share one layout, a PyTorch state dict pickled with ``torch.save``: a
torchvision ResNet-50 under ``model.`` whose ``fc`` gives the embedding (128 values, squashed by a
sigmoid), and ``fc_end``, a linear head on the absolute difference of two embeddings (the logit of
P(same patient)). That is memaudit's ``resnet50`` verifier with ``embedding_activation: sigmoid``:
the tensors move over unchanged, renamed ``backbone.`` and ``head.``.

Preprocessing. Packhäuser et al. trained at 256 px with ImageNet's per-channel normalisation, and
CheXGenBench's checkpoint comes from their code; CheXGenBench's own scoring feeds it 224 px without
normalisation. memaudit converts with the preprocessing the weights were trained with (256 px,
ImageNet) by default: a verifier is only as good as its inputs are like its training inputs, and the
re-identification threshold is calibrated on holdout patients either way, so a mismatch costs power
(real re-identifications missed), never a false alarm. ``input_side`` and ``normalisation`` say
otherwise for a checkpoint trained otherwise; the config records what was chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from memaudit.checkpoint.files import sha256_file
from memaudit.reid.network import Verifier, VerifierConfig
from memaudit.reid.weights import VerifierError, save_verifier

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PUBLISHED_TRAINING_SIDE = 256  # Packhäuser et al.'s input side
Normalisation = Literal["imagenet", "none"]


def read_pickled_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a pickled state dict, read with torch's restricted unpickler (tensors and plain
    containers only: a pickle that would build other objects is refused, not run); a dict wrapping
    it (``state_dict``, ``model_state_dict``) and DataParallel's ``module.`` prefix are unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise VerifierError(f"{path}: no such file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler's errors have no common base class
        raise VerifierError(f"{path}: not a PyTorch state dict torch can read safely ({error})") from error
    for key in ("state_dict", "model_state_dict"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise VerifierError(f"{path}: holds no state dict of tensors")
    return {key.removeprefix("module."): tensor for key, tensor in loaded.items()}


def published_verifier(
    state: dict[str, torch.Tensor], *, source: Path, trained_on: str, input_side: int, normalisation: Normalisation
) -> Verifier:
    """A Siamese ResNet-50 verifier's state dict (the published layout, read from ``source``) as memaudit's
    ``Verifier``; ``trained_on`` is the provenance its config records."""
    required = ("model.conv1.weight", "model.fc.weight", "fc_end.weight")
    strays = sorted(key for key in state if not key.startswith(("model.", "fc_end.")))
    if strays or any(key not in state for key in required):
        found = ", ".join(sorted(state)[:4]) + (", ..." if len(state) > 4 else "")
        raise VerifierError(
            f"{source}: not a Siamese ResNet-50 verifier's state dict (the layout of Packhäuser et al.'s and "
            f"CheXGenBench's: model.* and fc_end.*); found {found}"
        )
    channels = state["model.conv1.weight"].shape[1]
    if channels not in (1, 3):
        raise VerifierError(f"{source}: its first convolution reads {channels} channels; a verifier reads 1 or 3")
    if normalisation == "imagenet" and channels != 3:
        raise VerifierError(
            f"{source}: ImageNet normalisation is per colour channel, and this verifier reads {channels}; "
            "convert it with --normalisation none"
        )
    norm = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD} if normalisation == "imagenet" else {"mean": 0.0, "std": 1.0}
    config = VerifierConfig(
        architecture="resnet50",
        input_side=input_side,
        channels=channels,
        embedding_dim=state["model.fc.weight"].shape[0],
        embedding_activation="sigmoid",
        trained_on=trained_on,
        **norm,
    )
    renamed = {_renamed(key): tensor for key, tensor in state.items()}
    network = Verifier(config)
    try:
        network.load_state_dict(renamed)
    except RuntimeError as error:
        first = str(error).splitlines()[1:2] or [str(error)]
        raise VerifierError(f"{source}: does not fit a ResNet-50 verifier: {first[0].strip()}") from error
    return network.eval()


def _renamed(key: str) -> str:
    """A published key under memaudit's names: model.* -> backbone.*, fc_end.* -> head.*."""
    if key.startswith("model."):
        return "backbone." + key.removeprefix("model.")
    return "head." + key.removeprefix("fc_end.")


def convert_published(
    file: Path, out: Path, *, input_side: int = PUBLISHED_TRAINING_SIDE, normalisation: Normalisation = "imagenet"
) -> Verifier:
    """Write the published verifier pickled in ``file`` as a verifier folder ``out``; nothing is written
    unless the whole state dict converts."""
    state = read_pickled_state(file)
    trained_on = f"published verifier, converted from {Path(file).name} (sha256 {sha256_file(Path(file))})"
    network = published_verifier(
        state, source=Path(file), trained_on=trained_on, input_side=input_side, normalisation=normalisation
    )
    save_verifier(network, out)
    return network
