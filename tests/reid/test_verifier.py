"""The patient verifier: its pairs, its network, its weights folder and its training."""

from __future__ import annotations

import json

import pytest
import torch

from memaudit.data import ImageCaptionDataset
from memaudit.errors import MemauditError
from memaudit.metrics.roc import roc_auc
from memaudit.phantoms.identity import write_identity_cohort
from memaudit.reid.network import Verifier, VerifierConfig
from memaudit.reid.pairs import hard_partners, patient_images, sample_pairs
from memaudit.reid.training import ReidTraining, train_verifier
from memaudit.reid.weights import VerifierError, load_verifier, save_verifier

SMALL = VerifierConfig(architecture="small-cnn", input_side=16, embedding_dim=8, width=4)


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    root = tmp_path_factory.mktemp("identities")
    train = write_identity_cohort(root / "train", patients=40, studies=3, seed=0, size=32)
    holdout = write_identity_cohort(root / "holdout", patients=12, studies=3, seed=0, size=32, first_patient=500)
    return ImageCaptionDataset(train), ImageCaptionDataset(holdout)


def test_pairs_are_half_one_patient_and_half_two(cohorts):
    data = patient_images(cohorts[0], side=16, channels=1)
    assert data.images.dtype == torch.uint8 and len(data.patients) == 120 and len(data.repeated) == 40
    pairs, labels = sample_pairs(data, 40, torch.Generator().manual_seed(0))
    assert labels.tolist() == [1.0] * 20 + [0.0] * 20
    for (first, second), same in zip(pairs.tolist(), labels.tolist(), strict=True):
        assert first != second
        assert (data.patients[first] == data.patients[second]) == bool(same)
    again, _ = sample_pairs(data, 40, torch.Generator().manual_seed(0))
    assert torch.equal(pairs, again)


def test_hard_partners_are_the_nearest_images_of_other_patients():
    # on a line: a a b b c at 0, 1, 1.5, 4, 4.2 (patients a, a, b, b, c)
    embeddings = torch.tensor([[0.0], [1.0], [1.5], [4.0], [4.2]])
    partners = hard_partners(embeddings, ["a", "a", "b", "b", "c"], neighbours=2, chunk=2)
    assert partners.tolist() == [[2, 3], [2, 3], [1, 0], [4, 1], [3, 2]]


def test_a_quarter_of_the_pairs_are_look_alikes_when_hard_partners_are_given(cohorts):
    data = patient_images(cohorts[0], side=16, channels=1)
    hard = hard_partners(data.floats(slice(None)).flatten(1), data.patients, neighbours=3)
    pairs, labels = sample_pairs(data, 40, torch.Generator().manual_seed(0), hard=hard)
    assert labels.tolist() == [1.0] * 20 + [0.0] * 20
    look_alikes = pairs[20:30].tolist()
    assert all(second in hard[first].tolist() for first, second in look_alikes)
    assert all(data.patients[first] != data.patients[second] for first, second in pairs[20:].tolist())


def test_the_pair_score_is_symmetric_and_reads_the_embeddings_difference():
    torch.manual_seed(0)
    network = Verifier(SMALL).eval()
    images = torch.rand(5, 1, 16, 16)
    embeddings = network.embed(images)
    assert embeddings.shape == (5, 8) and torch.isfinite(embeddings).all()
    forward, backward = network(images[:3], images[2:]), network(images[2:], images[:3])
    assert torch.allclose(forward, backward)
    assert torch.allclose(network(images, images), network.head.bias.expand(5))  # one image: |e - e| = 0


def test_the_weights_folder_round_trips_and_bad_folders_are_named(tmp_path):
    torch.manual_seed(0)
    network = Verifier(SMALL)
    folder = save_verifier(network, tmp_path / "verifier")
    loaded = load_verifier(folder)
    images = torch.rand(2, 1, 16, 16)
    assert torch.equal(loaded.network.embed(images), network.eval().embed(images)) and len(loaded.sha256) == 64
    with pytest.raises(VerifierError, match="no verifier folder"):
        load_verifier(tmp_path / "absent")
    other = tmp_path / "other"
    save_verifier(Verifier(SMALL.model_copy(update={"width": 8})), other)
    (other / "config.json").write_text((folder / "config.json").read_text())  # config of another network
    with pytest.raises(VerifierError, match="does not fit its config"):
        load_verifier(other)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((folder / "config.json").read_text())
    torch.save(network.state_dict(), pickled / "model.pt")
    with pytest.raises(VerifierError, match=r"pickled weights \(model.pt\).*holds model.safetensors"):
        load_verifier(pickled)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"architecture": "small-cnn", "input_side": 4}))
    with pytest.raises(VerifierError, match="input_side: Input should be greater than or equal to 8"):
        load_verifier(bad)


@pytest.mark.parametrize("hard_neighbours", [0, 5], ids=["random-pairs", "look-alikes"])
def test_training_learns_identity_on_unseen_patients_and_resumes_to_the_same_weights(
    cohorts, tmp_path, hard_neighbours
):
    """Against the plain baseline on the same holdout pairs: the mean absolute pixel difference (pixels tell
    these patients apart a little: their anatomy differs, tests/phantoms); the verifier must do far better.
    With look-alike pairs, a resumed run redraws them from the network it resumed: the same weights again."""
    settings = ReidTraining(input_side=32, embedding_dim=16, width=8, steps=200, batch_size=32, evaluate_every=50)
    settings = ReidTraining(**{**settings.__dict__, "validation_pairs": 400, "hard_neighbours": hard_neighbours})
    record = train_verifier(*cohorts, settings, out=tmp_path / "whole")
    unseen = patient_images(cohorts[1], side=32, channels=1)
    pairs, labels = sample_pairs(unseen, 400, torch.Generator().manual_seed(settings.seed + 1))  # the same pairs
    distance = (unseen.floats(pairs[:, 0]) - unseen.floats(pairs[:, 1])).abs().mean(dim=(1, 2, 3))
    pixels = roc_auc(-distance[labels == 1], -distance[labels == 0])
    assert pixels > 0.55 and record.best_auc > pixels + 0.15
    training = json.loads((tmp_path / "whole" / "training.json").read_text())
    assert training["best_auc"] == record.best_auc
    assert [evaluation["step"] for evaluation in training["evaluations"]] == [50, 100, 150, 200]

    class Stop(Exception):
        pass

    def stop_at_100(evaluation):
        if evaluation["step"] == 100:
            raise Stop

    with pytest.raises(Stop):
        train_verifier(*cohorts, settings, out=tmp_path / "stopped", on_evaluation=stop_at_100)
    resumed = train_verifier(*cohorts, settings, out=tmp_path / "stopped")
    assert resumed.evaluations == record.evaluations
    whole, again = (load_verifier(tmp_path / name).network.state_dict() for name in ("whole", "stopped"))
    assert all(torch.equal(whole[key], again[key]) for key in whole)


def test_training_refuses_shared_patients_and_rows_without_patients(cohorts, tmp_path):
    train, _ = cohorts
    with pytest.raises(MemauditError, match="shares 40 patient"):
        train_verifier(train, train, ReidTraining(input_side=16), out=tmp_path / "a")
    rows = [json.loads(line) for line in (train.source / "metadata.jsonl").read_text().splitlines()]
    anonymous = tmp_path / "anonymous"
    anonymous.mkdir()
    (anonymous / "images").symlink_to(train.source / "images")
    (anonymous / "metadata.jsonl").write_text("".join(json.dumps(row | {"patient_id": None}) + "\n" for row in rows))
    with pytest.raises(MemauditError, match="120 row\\(s\\) name no patient"):
        train_verifier(ImageCaptionDataset(anonymous), cohorts[1], ReidTraining(input_side=16), out=tmp_path / "b")


def test_reid_train_command_prints_the_holdout_auc_and_names_bad_input(cohorts, tmp_path, capsys):
    from memaudit.cli import run
    from memaudit.errors import ExitCode

    train, holdout = (str(data.source) for data in cohorts)
    out = tmp_path / "verifier"
    argv = ["reid", "train", "--train", train, "--holdout", holdout, "--out", str(out), "--input-side", "16"]
    assert run([*argv, "--steps", "20", "--batch-size", "8", "--hard-neighbours", "3"]) == ExitCode.OK
    said = capsys.readouterr()
    assert json.loads((out / "training.json").read_text())["settings"]["hard_neighbours"] == 3
    assert f"verifier in {out}: holdout verification AUC" in said.out and "step 20: loss" in said.err
    assert load_verifier(out).network.config.input_side == 16
    shared = ["reid", "train", "--train", train, "--holdout", train, "--out", str(tmp_path / "x")]
    assert run(shared) == ExitCode.ERROR
    assert f"{train}: shares 40 patient(s) with the training set" in capsys.readouterr().err
    assert run([*argv, "--architecture", "vit"]) == ExitCode.ERROR
    assert "--architecture 'vit': choose small-cnn or resnet50" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
