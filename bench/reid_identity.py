"""Does a model's sample carry the identity of the patients it trained on, as the verifier sees it? And
what would the patient count test need as its null on a model's images?

    .venv/bin/python bench/reid_identity.py [--data build/reid-model] [--steps 2000] [--per-caption 7] \
        [--models base,fine-tuned,frequent-only,control-1,control-2,control-3] [--out build/reid-identity]

DATA is bench/reid_model.py's folder (its archive of 8 patients x 200 studies + 600 x 2, its verifier, and its
fine-tune, which is run there first if missing; ``--anatomy-only`` there carries over to the archives made
here). Models: ``base`` (the demo base, never saw the patients),
``fine-tuned`` (reid_model.py's), ``frequent-only`` (the base fine-tuned on the 8 frequent patients' 1,600
studies alone: the hardest a model can be pushed to learn them), ``two-only`` (the first two of them alone),
``control-1..3`` (fine-tuned on archives of
the same shape with other patients: they never saw the training set); ``NAME=FOLDER`` adds a model made
elsewhere (e.g. reid_model.py's fine-tune at other steps). Each model's sample is every distinct
training caption x ``--per-caption`` seeds with the scan's sampler (bench/reid_model_policy.yaml: DDIM, 25
steps, guidance 3), embedded by the verifier (cached in OUT).

Identity: each image's mean pair logit against each frequent patient's training studies; real new studies of
those patients (not trained on) set the bar (the median of each one's logit for its own patient), and a
model's images above the bar are the images the verifier sees as one of them. The autoencoder's round trip of
the real new studies shows whether the latent space can carry identity at all, and the same studies blurred
(``BLUR``) how much of it the verifier still reads in smoothed images; for these the right patient is known,
and the share of them attributed to that patient is reported too.

Nulls for the count test on a model's images (attribution: each image's nearest training patient by the
verifier, as the check attributes them): one control's images (the hypergeometric test of
``metrics.patient_counts``; the control-vs-control rows are false names), and two controls' images with the
reference-to-reference spread fitted (bench/reid_nulls.py: each patient's counts in the model and two
references as a Dirichlet-multinomial split, its concentration fitted on the two references alone).
Writes OUT/figures.json and prints it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from ground_truth import SAMPLING, latent_side  # this folder is on sys.path when a bench script runs
from reid_model import BASE, SIDE, _finetuned
from reid_nulls import nulls

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint
from memaudit.data import ImageCaptionDataset
from memaudit.denoiser import denoiser_for
from memaudit.metrics.reidentification import resemblance
from memaudit.phantoms.identity import write_identity_cohort, write_longitudinal_cohort
from memaudit.reid.weights import embed_images, load_verifier
from memaudit.sampling.generate import generate_images
from memaudit.sampling.text import encode_prompts

KNOWN_MODELS = ("base", "fine-tuned", "frequent-only", "two-only")
CONTROL_PATIENTS = {"control-1": 20_000, "control-2": 30_000, "control-3": 40_000}  # first patient of each archive
TOP_K = 5  # the check's default
BLUR = (1.0, 1.5)  # Gaussian sigmas (pixels) of the blurred real new studies: how much of identity the verifier
# still reads in smoothed images, as a small model's images are


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("build/reid-model"))
    parser.add_argument("--steps", type=int, default=2000, help="Fine-tuning steps of the models made here.")
    parser.add_argument("--per-caption", type=int, default=7)
    parser.add_argument("--models", default="base,fine-tuned,frequent-only,control-1,control-2,control-3")
    parser.add_argument("--out", type=Path, default=Path("build/reid-identity"))
    args = parser.parse_args()
    entries = [entry.partition("=") for entry in args.models.split(",")]  # NAME=FOLDER: a model made elsewhere
    for name, _, folder in entries:
        if not (Path(folder).is_dir() if folder else name in {*KNOWN_MODELS, *CONTROL_PATIENTS}):
            parser.error(f"--models: no model {name!r}{f' in {folder}' if folder else ''}")
    data, out = args.data, args.out
    out.mkdir(parents=True, exist_ok=True)
    shape = _shape(data)
    view = IdentityView.of(data, frequent=shape["frequent"])
    new = write_identity_cohort(
        out / "new-studies", patients=shape["frequent"], studies=10, first_study=shape["frequent_studies"], seed=0,
        size=SIDE, own_texture=shape["own_texture"],
    )  # fmt: skip
    real_new = ImageCaptionDataset(new).load_images(size=SIDE, channels=3)
    truth = [patient for patient in view.frequent for _ in range(10)]
    known = {"real_new_studies": real_new, "autoencoder_round_trip": _round_trip(BASE, real_new)}
    known |= {f"real_new_studies_blurred_{sigma}px": _blurred(real_new, sigma) for sigma in BLUR}
    known = {name: view.embedded(images) for name, images in known.items()}
    view.bar = float(view.own_logits(known["real_new_studies"], truth).median())
    figures = {"identity_bar": view.bar}
    for name, sample in known.items():  # the right patient is known: how often the attribution finds them
        drawn = view.attribution(sample)
        right = sum(who == patient for who, patient in zip(drawn, truth, strict=True)) / len(drawn)
        figures[name] = view.row(sample, drawn) | {"right_patient": round(right, 3)}
    captions = sorted(set(view.train.captions))
    attributed = {}
    for name, _, folder in entries:
        cache = out / f"emb-{name}.pt"
        if cache.is_file():
            sample = torch.load(cache)
        else:
            model = Path(folder) if folder else _model(name, data=data, out=out, steps=args.steps, shape=shape)
            sample = _sample(model, captions, per_caption=args.per_caption, embed=view.embedded)
            torch.save(sample, cache)
        attributed[name] = view.attribution(sample)
        figures[name] = view.row(sample, attributed[name])
        (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    figures |= nulls(attributed, frequent=view.frequent)
    (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


@dataclass
class IdentityView:
    """The training archive as the verifier sees it: every training image's embedding and patient."""

    net: torch.nn.Module
    train: ImageCaptionDataset
    gallery: torch.Tensor
    patients: list[str]
    frequent: list[str]
    bar: float = 0.0  # the identity bar: set from real new studies of the frequent patients

    @classmethod
    def of(cls, data: Path, *, frequent: int) -> IdentityView:
        net = load_verifier(data / "verifier").network
        train = ImageCaptionDataset(data / "train")
        gallery = embed_images(net, train.load_images(size=SIDE, channels=1))
        patients = [str(record.patient_id) for record in train.records]
        return cls(net, train, gallery, patients, [f"patient-p{patient:06d}" for patient in range(frequent)])

    def embedded(self, images: torch.Tensor) -> torch.Tensor:
        return embed_images(self.net, images.mean(1, keepdim=True))

    def logits(self, sample: torch.Tensor) -> torch.Tensor:
        """[N, frequent]: each image's mean pair logit against each frequent patient's training images."""
        columns = []
        with torch.no_grad():
            for patient in self.frequent:
                theirs = self.gallery[[i for i, who in enumerate(self.patients) if who == patient]]
                pairs = self.net.pair_logits(sample.repeat_interleave(len(theirs), 0), theirs.repeat(len(sample), 1))
                columns.append(pairs.reshape(len(sample), len(theirs)).mean(1))
        return torch.stack(columns, 1)

    def own_logits(self, sample: torch.Tensor, truth: list[str]) -> torch.Tensor:
        return self.logits(sample)[torch.arange(len(truth)), [self.frequent.index(who) for who in truth]]

    def attribution(self, sample: torch.Tensor) -> list[str]:
        """Each image's training patient, as the check attributes it."""
        with torch.no_grad():
            found = resemblance(sample, self.gallery, self.net.pair_logits, top_k=TOP_K)
        return [self.patients[int(row)] for row in found.train_rows]

    def row(self, sample: torch.Tensor, drawn: list[str]) -> dict:
        best, who = self.logits(sample).max(1)
        above = best > self.bar
        return {
            "images": len(sample),
            "above_bar": int(above.sum()),
            "above_bar_by_patient": torch.bincount(who[above], minlength=len(self.frequent)).tolist(),
            "frequent_share": round(sum(p in self.frequent for p in drawn) / len(drawn), 3),
            "attributed_to_frequent": [drawn.count(p) for p in self.frequent],
        }


def _shape(data: Path) -> dict:
    """How reid_model.py made the archive in ``data`` (its figures.json), as write_longitudinal_cohort takes it."""
    made = json.loads((data / "figures.json").read_text())
    return {
        "frequent": made["frequent_patients"], "frequent_studies": made["frequent_studies"],
        "patients": made["generic_patients"], "studies": made["generic_studies"],
        "own_texture": made.get("identity") != "anatomy",
    }  # fmt: skip


def _blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """``images`` [N, C, H, W] under a separable Gaussian blur (edges replicated)."""
    radius = max(1, round(3 * sigma))
    taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=images.dtype) ** 2) / (2 * sigma**2))
    taps = (taps / taps.sum()).repeat(images.shape[1], 1, 1)
    padded = torch.nn.functional.pad(images, (radius,) * 4, mode="replicate")
    across = torch.nn.functional.conv2d(padded, taps[:, :, None, :], groups=images.shape[1])
    return torch.nn.functional.conv2d(across, taps[:, :, :, None], groups=images.shape[1])


def _round_trip(model: Path, images: torch.Tensor) -> torch.Tensor:
    """``images`` through the model's autoencoder: encoded (the posterior mean) and decoded."""
    denoiser = denoiser_for(load_checkpoint(model).pipeline)
    return denoiser.decode(denoiser.encode_images(images))


def _model(name: str, *, data: Path, out: Path, steps: int, shape: dict) -> Path:
    if name == "base":
        return BASE
    if name == "fine-tuned":
        return _finetuned(data / "train", steps=steps, out=data / "finetune")
    if name == "frequent-only":
        return _finetuned(data / "train" / "frequent", steps=steps, out=out / "frequent-only")
    if name == "two-only":  # the first two frequent patients' studies alone
        two = write_identity_cohort(
            out / "two-only-train", patients=2, studies=shape["frequent_studies"], seed=0, size=SIDE,
            own_texture=shape["own_texture"],
        )  # fmt: skip
        return _finetuned(two, steps=steps, out=out / "two-only")
    train = write_longitudinal_cohort(
        out / f"{name}-train", seed=0, size=SIDE, first_patient=CONTROL_PATIENTS[name], **shape
    )
    return _finetuned(train, steps=steps, out=out / name)


def _sample(model: Path, captions: list[str], *, per_caption: int, embed) -> torch.Tensor:
    """The verifier's embeddings (``embed``) of the model's images: each caption with seeds
    ``round * 100000 + caption index`` per round."""
    pipeline = load_checkpoint(model).pipeline
    prompts, empty = encode_prompts(pipeline, captions), encode_prompts(pipeline, [""])
    side = latent_side(pipeline, SIDE)
    rounds = []
    for round_ in range(per_caption):
        seeds = [round_ * 100_000 + i for i in range(len(captions))]
        images = generate_images(pipeline, prompts, empty, seeds=seeds, latent_size=side, batch_size=64, **SAMPLING)
        rounds.append(embed(images))
        print(f"{model}: {sum(map(len, rounds))} images", flush=True)
    return torch.cat(rounds)


if __name__ == "__main__":
    main()
