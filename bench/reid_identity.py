"""Does a model's sample carry the identity of the patients it trained on, as the verifier sees it? And
what would the patient count test need as its null on a model's images?

    .venv/bin/python bench/reid_identity.py [--data build/reid-model] [--steps 2000] [--per-caption 7] \
        [--models base,fine-tuned,frequent-only,control-1,control-2,control-3] [--out build/reid-identity]

DATA is bench/reid_model.py's folder (its archive of 8 patients x 200 studies + 600 x 2, its verifier, and its
fine-tune, which is run there first if missing; ``--anatomy-only`` there carries over to the archives made
here). Models: ``base`` (the demo base, never saw the patients),
``fine-tuned`` (reid_model.py's), ``frequent-only`` (the base fine-tuned on the 8 frequent patients' 1,600
studies alone: the hardest a model can be pushed to learn them), ``control-1..3`` (fine-tuned on archives of
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
reference-to-reference spread fitted (``dirichlet_named``: each patient's counts in the model and two
references as a Dirichlet-multinomial split, its concentration fitted on the two references alone).
Writes OUT/figures.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

import torch
from reid_model import BASE, SIDE, _finetuned  # this folder is on sys.path when a bench script runs
from scipy import optimize, stats

import memaudit  # noqa: F401  (runtime guards)
from memaudit.checkpoint import load_checkpoint
from memaudit.data import ImageCaptionDataset
from memaudit.denoiser import denoiser_for
from memaudit.metrics.patient_counts import named_by_count, patient_counts, tarone_filter
from memaudit.metrics.reidentification import resemblance
from memaudit.metrics.tail import benjamini_hochberg
from memaudit.phantoms.identity import write_identity_cohort, write_longitudinal_cohort
from memaudit.reid.weights import embed_images, load_verifier
from memaudit.sampling.generate import generate_images
from memaudit.sampling.text import encode_prompts

CONTROL_PATIENTS = {"control-1": 20_000, "control-2": 30_000, "control-3": 40_000}  # first patient of each archive
ALPHA = 0.01  # the shipped policies' family level
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
    data, out = args.data, args.out
    out.mkdir(parents=True, exist_ok=True)
    made = json.loads((data / "figures.json").read_text())  # how reid_model.py made the archive
    shape = {
        "frequent": made["frequent_patients"], "frequent_studies": made["frequent_studies"],
        "patients": made["generic_patients"], "studies": made["generic_studies"],
        "own_texture": made.get("identity") != "anatomy",
    }  # fmt: skip
    train = ImageCaptionDataset(data / "train")
    net = load_verifier(data / "verifier").network
    gallery = embed_images(net, train.load_images(size=SIDE, channels=1))
    patients = [str(record.patient_id) for record in train.records]
    frequent = [f"patient-p{patient:06d}" for patient in range(shape["frequent"])]
    rows = {p: [i for i, q in enumerate(patients) if q == p] for p in frequent}
    studies = shape["frequent_studies"]
    new = write_identity_cohort(
        out / "new-studies", patients=len(frequent), studies=10, first_study=studies, seed=0, size=SIDE,
        own_texture=shape["own_texture"],
    )  # fmt: skip
    real_new = ImageCaptionDataset(new).load_images(size=SIDE, channels=3)
    truth = torch.arange(len(frequent)).repeat_interleave(10)

    def embedded(images: torch.Tensor) -> torch.Tensor:
        return embed_images(net, images.mean(1, keepdim=True))

    def identity(sample: torch.Tensor) -> torch.Tensor:  # [N, frequent] mean pair logit per frequent patient
        with torch.no_grad():
            return torch.stack([_mean_logit(net, sample, gallery[rows[p]]) for p in frequent], 1)

    def attribution(sample: torch.Tensor) -> list[str]:  # each image's training patient, as the check has it
        with torch.no_grad():
            return [patients[int(row)] for row in resemblance(sample, gallery, net.pair_logits, top_k=TOP_K).train_rows]

    def row(sample: torch.Tensor, drawn: list[str]) -> dict:
        return _identity_row(identity(sample), bar) | {
            "frequent_share": round(sum(p in frequent for p in drawn) / len(drawn), 3),
            "attributed_to_frequent": [drawn.count(p) for p in frequent],
        }

    real = embedded(real_new)
    bar = float(identity(real)[torch.arange(len(truth)), truth].median())
    figures = {"identity_bar": bar}
    known = {"real_new_studies": real, "autoencoder_round_trip": embedded(_round_trip(BASE, real_new))}
    known |= {f"real_new_studies_blurred_{sigma}px": embedded(_blurred(real_new, sigma)) for sigma in BLUR}
    for name, sample in known.items():  # the right patient is known: how often the attribution finds them
        drawn = attribution(sample)
        right = sum(who == frequent[patient] for who, patient in zip(drawn, truth.tolist(), strict=True))
        figures[name] = row(sample, drawn) | {"right_patient": round(right / len(drawn), 3)}
    captions = sorted(set(train.captions))
    attributed = {}
    for entry in args.models.split(","):
        name, _, folder = entry.partition("=")  # NAME=FOLDER: a model made elsewhere
        cache = out / f"emb-{name}.pt"
        if cache.is_file():
            sample = torch.load(cache)
        else:
            model = Path(folder) if folder else _model(name, data=data, out=out, steps=args.steps, shape=shape)
            sample = _sample(model, captions, per_caption=args.per_caption, embed=embedded)
            torch.save(sample, cache)
        attributed[name] = attribution(sample)
        figures[name] = row(sample, attributed[name])
        (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    controls = [name for name in attributed if name.startswith("control")]
    figures["one_reference"] = {
        f"{model} vs {reference}": _named(
            named_by_count(patient_counts(attributed[model], attributed[reference]), ALPHA)[0], frequent
        )
        for model in attributed
        for reference in controls
        if model != reference
    }
    figures["two_references"] = {}
    for model in attributed:
        others = [name for name in controls if name != model]
        for first, second in ((a, b) for i, a in enumerate(others) for b in others[i + 1 :]):
            concentration, named = dirichlet_named(attributed[model], attributed[first], attributed[second], ALPHA)
            figures["two_references"][f"{model} vs {first}+{second}"] = _named(named, frequent) | {
                "concentration": round(concentration, 2)
            }
    (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


def dirichlet_named(model: list[str], first: list[str], second: list[str], alpha: float) -> tuple[float, list[str]]:
    """Patients drawing more of ``model``'s images than two references' (equal-sized samples; each entry an
    image's patient): per patient the three counts are a Dirichlet-multinomial split of their sum with equal
    concentration r (gamma-Poisson counts whose patient-specific scale cancels), r fitted by maximum likelihood
    on the two references' splits alone; the model's tail p-value, Tarone's filter and Benjamini-Hochberg at
    ``alpha``. Returns (r, named patients)."""
    if not len(model) == len(first) == len(second):
        raise ValueError("the three samples must be the same size")
    counts = [Counter(sample) for sample in (model, first, second)]
    everyone = sorted(set().union(*counts))
    pairs = [(counts[1][p], counts[1][p] + counts[2][p]) for p in everyone if counts[1][p] + counts[2][p]]

    def loss(log_r: float) -> float:
        r = math.exp(log_r)
        return -sum(float(stats.betabinom.logpmf(k, n, r, r)) for k, n in pairs)

    r = math.exp(optimize.minimize_scalar(loss, bounds=(-6.0, 12.0), method="bounded").x)
    totals = [sum(c[p] for c in counts) for p in everyone]
    p_values = [float(stats.betabinom.sf(counts[0][p] - 1, n, r, 2 * r)) for p, n in zip(everyone, totals, strict=True)]
    least = [float(stats.betabinom.pmf(n, n, r, 2 * r)) for n in totals]
    kept = [i for i, keep in enumerate(tarone_filter(least, alpha)) if keep]
    selected = benjamini_hochberg([p_values[i] for i in kept], alpha) if kept else []
    return r, [everyone[i] for i, keep in zip(kept, selected, strict=True) if keep]


def _named(named, frequent: list[str]) -> dict:
    ids = [getattr(patient, "patient", patient) for patient in named]
    return {"named": len(ids), "named_frequent": sum(p in frequent for p in ids), "ids": ids[:12]}


def _mean_logit(net, embedded: torch.Tensor, patient: torch.Tensor) -> torch.Tensor:
    n, k = len(embedded), len(patient)
    return net.pair_logits(embedded.repeat_interleave(k, 0), patient.repeat(n, 1)).reshape(n, k).mean(1)


def _identity_row(scores: torch.Tensor, bar: float) -> dict:
    best, who = scores.max(1)
    above = best > bar
    return {
        "images": len(scores),
        "above_bar": int(above.sum()),
        "above_bar_by_patient": torch.bincount(who[above], minlength=scores.shape[1]).tolist(),
    }


def _blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """``images`` [N, C, H, W] under a separable Gaussian blur (edges replicated)."""
    radius = max(1, round(3 * sigma))
    taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=images.dtype) ** 2) / (2 * sigma**2))
    taps = (taps / taps.sum()).repeat(images.shape[1], 1, 1)
    padded = torch.nn.functional.pad(images, (radius,) * 4, mode="replicate")
    across = torch.nn.functional.conv2d(padded, taps[:, :, None, :], groups=images.shape[1])
    return torch.nn.functional.conv2d(across, taps[:, :, :, None], groups=images.shape[1])


def _round_trip(model: Path, images: torch.Tensor) -> torch.Tensor:
    vae = load_checkpoint(model).pipeline.vae
    with torch.no_grad():
        return ((vae.decode(vae.encode(images * 2 - 1).latent_dist.mean).sample + 1) / 2).clamp(0, 1)


def _model(name: str, *, data: Path, out: Path, steps: int, shape: dict) -> Path:
    if name == "base":
        return BASE
    if name == "fine-tuned":
        return _finetuned(data / "train", steps=steps, out=data / "finetune")
    if name == "frequent-only":
        return _finetuned(data / "train" / "frequent", steps=steps, out=out / "frequent-only")
    train = write_longitudinal_cohort(
        out / f"{name}-train", seed=0, size=SIDE, first_patient=CONTROL_PATIENTS[name], **shape
    )
    return _finetuned(train, steps=steps, out=out / name)


def _sample(model: Path, captions: list[str], *, per_caption: int, embed) -> torch.Tensor:
    """The verifier's embeddings (``embed``) of the model's images: each caption with seeds
    ``round * 100000 + caption index`` per round."""
    pipeline = load_checkpoint(model).pipeline
    prompts, empty = encode_prompts(pipeline, captions), encode_prompts(pipeline, [""])
    side = denoiser_for(pipeline).latent_side(SIDE)
    rounds = []
    for round_ in range(per_caption):
        seeds = [round_ * 100_000 + i for i in range(len(captions))]
        images = generate_images(
            pipeline, prompts, empty, seeds=seeds, num_inference_steps=25, guidance_scale=3.0, latent_size=side,
            batch_size=64,
        )  # fmt: skip
        rounds.append(embed(images))
        print(f"{model}: {sum(map(len, rounds))} images", flush=True)
    return torch.cat(rounds)


if __name__ == "__main__":
    main()
