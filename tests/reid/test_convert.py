"""Published verifiers converted to verifier folders (`memaudit weights convert`).

The published layout (Packhäuser et al.'s and CheXGenBench's Siamese ResNet-50) is rebuilt here from
torchvision with random weights: the converted verifier must score every pair exactly as the published
network does on the inputs it was trained with (ImageNet-normalised), and every bad input is refused
before anything is written.
"""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from memaudit.cli import run
from memaudit.errors import ExitCode
from memaudit.reid.convert import IMAGENET_MEAN, IMAGENET_STD
from memaudit.reid.weights import load_verifier


class PublishedSiamese(torch.nn.Module):
    """The published verifiers' layout: ResNet-50 with a 128-value fc under ``model``, ``fc_end`` on |e1 - e2|."""

    def __init__(self, channels: int = 3) -> None:
        from torchvision.models import resnet50

        super().__init__()
        self.model = resnet50(weights=None)
        if channels == 1:
            self.model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.model.fc = torch.nn.Linear(2048, 128)
        self.fc_end = torch.nn.Linear(128, 1)

    def forward(self, first, second):
        return self.fc_end((torch.sigmoid(self.model(first)) - torch.sigmoid(self.model(second))).abs())


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    torch.manual_seed(0)
    network = PublishedSiamese().eval()
    for module in network.modules():  # running statistics away from their defaults, so BN is exercised too
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("published") / "ResNet-50_epoch11_data_handling_RPN.pth"
    torch.save(network.state_dict(), path)
    return network, path


def _convert(path, out, *extra) -> int:
    return run(["weights", "convert", str(path), "--out", str(out), "--allow-pickle", *extra])


def test_a_converted_verifier_scores_every_pair_as_the_published_network_does(published, tmp_path, capsys):
    network, path = published
    assert _convert(path, tmp_path / "verifier", "--input-side", "64") == ExitCode.OK
    assert "resnet50, 3 channel(s) at 64 px, imagenet normalisation, 128-value embedding" in capsys.readouterr().out
    verifier = load_verifier(tmp_path / "verifier").network
    config = json.loads((tmp_path / "verifier" / "config.json").read_text())
    assert config["embedding_activation"] == "sigmoid" and config["input_side"] == 64
    assert config["trained_on"].startswith("published verifier, converted from ResNet-50_epoch11_data_handling_RPN.pth")
    first, second = torch.rand(2, 4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    mean, std = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    with torch.no_grad():
        expected = network((first - mean) / std, (second - mean) / std).squeeze(1)
        got = verifier(first, second)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_a_dataparallel_checkpoint_wrapped_in_a_dict_converts_too(published, tmp_path):
    network, _ = published
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"epoch": 11, "state_dict": {f"module.{k}": v for k, v in network.state_dict().items()}}, wrapped)
    assert _convert(wrapped, tmp_path / "verifier", "--input-side", "64") == ExitCode.OK
    assert load_verifier(tmp_path / "verifier").network.config.embedding_dim == 128


def test_a_one_channel_verifier_needs_its_normalisation_said(tmp_path, capsys):
    path = tmp_path / "gray.pth"
    torch.save(PublishedSiamese(channels=1).state_dict(), path)
    assert _convert(path, tmp_path / "refused") == ExitCode.ERROR
    assert "reads 1; convert it with --normalisation none" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    assert _convert(path, tmp_path / "gray", "--normalisation", "none", "--input-side", "32") == ExitCode.OK
    assert load_verifier(tmp_path / "gray").network.config.channels == 1


class _Gadget:  # stands for what a malicious pickle builds
    pass


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(128, 2048)}, "found conv1.weight"),
        ({"model.conv1.weight": torch.zeros(64, 3, 7, 7)}, "not a Siamese ResNet-50 verifier's state dict"),
        ([1, 2, 3], "holds no state dict of tensors"),
        (_Gadget(), "not a PyTorch state dict torch can read safely"),
    ],
)
def test_what_is_not_a_published_verifier_is_refused_naming_the_file(tmp_path, capsys, content, message):
    path = tmp_path / "other.pth"
    with path.open("wb") as handle:
        pickle.dump(content, handle) if isinstance(content, _Gadget) else torch.save(content, handle)
    assert _convert(path, tmp_path / "out") == ExitCode.ERROR
    err = capsys.readouterr().err
    assert str(path) in err and message in err
    assert not (tmp_path / "out").exists()


def test_a_weights_mismatch_is_named(published, tmp_path, capsys):
    network, _ = published
    state = network.state_dict()
    state["fc_end.weight"] = torch.zeros(1, 64)
    path = tmp_path / "mismatch.pth"
    torch.save(state, path)
    assert _convert(path, tmp_path / "out") == ExitCode.ERROR
    assert "does not fit a ResNet-50 verifier" in capsys.readouterr().err


def test_option_errors_exit_2_before_the_file_is_read(published, tmp_path, capsys):
    _, path = published
    assert run(["weights", "convert", str(path), "--out", str(tmp_path / "out")]) == ExitCode.ERROR
    assert "is a pickle, and loading a pickle can run code" in capsys.readouterr().err
    assert _convert(path, tmp_path / "out", "--normalisation", "zscore") == ExitCode.ERROR
    assert "--normalisation 'zscore': choose imagenet or none" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert _convert(path, tmp_path / "full") == ExitCode.ERROR
    assert "exists and is not empty" in capsys.readouterr().err
    assert _convert(tmp_path / "missing.pth", tmp_path / "out") == ExitCode.ERROR
    assert "missing.pth: no such file" in capsys.readouterr().err
