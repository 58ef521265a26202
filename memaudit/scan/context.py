"""What the checks of one scan share: the pipeline, the data, prompt groups, and lazily built inputs.

The context is built complete (pipeline and comparison side included) before any check runs, and is
frozen; the expensive inputs (pixels, features, embeddings) are computed once on first use. Checks
read it and return their findings, evidence included, in their CheckOutcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from pathlib import Path

import torch

from memaudit.checkpoint import Checkpoint
from memaudit.data import ImageCaptionDataset, conform
from memaudit.data.pixel_store import PixelStore
from memaudit.denoiser import Conditioning, Denoiser, denoiser_for
from memaudit.features import ExtractorOptions, FeatureExtractor, create_extractor
from memaudit.features.cache import FeatureCache, dataset_features
from memaudit.policy import Policy
from memaudit.scan.progress import Progress
from memaudit.scan.prompts import PromptGroup, prompt_groups
from memaudit.scan.shard import Shard
from memaudit.scan.work_log import WorkLog

PROMPT_CHUNK = 1024  # prompts embedded at once: 1024 CLIP-L embeddings are ~240 MB of float32


@dataclass(frozen=True)
class ScanContext:
    policy: Policy
    train: ImageCaptionDataset
    holdout: ImageCaptionDataset
    progress: Progress
    # The model: a diffusers pipeline of any supported family or its Denoiser, held as the Denoiser that
    # every check runs it through; None when auditing a folder of images.
    pipeline: Denoiser | None
    image_side: int  # side of the model's images (or the released ones)
    feature_cache: Path | None = None
    extractor_options: ExtractorOptions = field(default_factory=ExtractorOptions)
    include_evidence_images: bool = False  # internal reports only: checks return thumbnails of copies
    work: WorkLog | None = None  # finished units of work, for resuming a killed scan
    reference: Checkpoint | None = None  # the model's base, loaded: the membership check's reference
    shard: Shard = field(default_factory=Shard)  # this process's part of a scan spread over several
    # Values a scan computes once and several checks read (e.g. the extraction thresholds); never
    # carried over by ``dataclasses.replace``, so a context with other inputs computes its own.
    memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if hasattr(self.pipeline, "components") and not isinstance(self.pipeline, Denoiser):  # a diffusers pipeline
            guidance = self.policy.sampling.guidance_scale
            object.__setattr__(self, "pipeline", denoiser_for(self.pipeline, guidance=guidance))
        if self.image_side < 1:
            raise ValueError(f"`image_side` must be at least 1, got {self.image_side}")

    @property
    def tokenizer(self):
        """The model's tokenizer that reads furthest (None when auditing a folder of images)."""
        return self.pipeline.tokenizer if self.pipeline is not None else None

    @cached_property
    def train_groups(self) -> list[PromptGroup]:
        return prompt_groups(self.train, self.tokenizer, max_length=self._text_length)

    @cached_property
    def holdout_groups(self) -> list[PromptGroup]:
        return prompt_groups(self.holdout, self.tokenizer, max_length=self._text_length)

    @property
    def _text_length(self) -> int | None:
        return self.pipeline.text_max_length if self.pipeline is not None else None

    def ids(self, rows: list[int]) -> list[str]:
        return [self.train.records[row].id for row in rows]

    @cached_property
    def distinct_train_rows(self) -> list[int]:
        """One row per distinct training image file content (its first row): a study listed many times
        is one image, so that nearest and second-nearest are two different images."""
        return self.train.first_rows("image")

    @cached_property
    def distinct_train_pixels(self) -> PixelStore:
        """The distinct training images (``distinct_train_rows``) at ``compare_side``, 3 channels, on
        disk: read a chunk at a time, never stacked in memory."""
        return self.pixel_store(self.train, self.distinct_train_rows, "training")

    @cached_property
    def holdout_pixels(self) -> PixelStore:
        return self.pixel_store(self.holdout, list(range(len(self.holdout))), "holdout")

    def pixel_store(self, dataset: ImageCaptionDataset, rows: list[int], label: str) -> PixelStore:
        root = self.feature_cache / "comparison-pixels" if self.feature_cache else None
        advance = self.progress.stage(f"loading {label} images", len(rows))
        return PixelStore.build(
            dataset, rows, side=self.compare_side, channels=3, root=root, progress=advance, on_stale=self.stale_cache
        )

    def stale_cache(self, message: str) -> None:
        """A cached or logged unit that failed its check: said, then recomputed (a cache buys speed, not truth)."""
        self.progress.note(f"warning: {message}; recomputing it")

    @property
    def compare_side(self) -> int:
        """Side at which images are compared pixel-wise (tiled L2): the policy's, never above ``image_side``."""
        return min(self.policy.checks.extraction.comparison_side or self.image_side, self.image_side)

    def for_comparison(self, images) -> torch.Tensor:
        """Images (a tensor or a PixelStore) at the comparison side, 3 channels."""
        if (images.shape[-1] == self.compare_side and images.shape[1] == 3) or not len(images):
            return images
        return torch.stack([conform(image, size=self.compare_side, channels=3) for image in images])

    @property
    def compare_device(self) -> torch.device:
        """Where images are compared (tiled L2, float64): the scan's CUDA device, else the CPU (MPS has
        no float64)."""
        device = torch.device(self.extractor_options.device)
        return device if device.type == "cuda" else torch.device("cpu")

    def train_image(self, row: int) -> torch.Tensor:
        """One training image at the comparison side (evidence thumbnails)."""
        return self._conform(self.train.load_image(row))

    def _conform(self, image: torch.Tensor) -> torch.Tensor:
        return conform(image, size=self.image_side, channels=3)

    @cached_property
    def extractor(self) -> FeatureExtractor:
        settings = self.policy.checks.nearest_neighbour
        options = ExtractorOptions(
            weights=settings.extractor_weights,
            allow_random_weights=self.extractor_options.allow_random_weights,
            allow_pickle=self.extractor_options.allow_pickle,
            device=self.extractor_options.device,
        )
        return create_extractor(settings.extractor, options)

    def dataset_features(self, dataset: ImageCaptionDataset, label: str) -> torch.Tensor:
        cache = None
        if self.feature_cache:
            cache = FeatureCache(self.feature_cache, self.extractor, on_stale=self.stale_cache)
        advance = self.progress.stage(f"features of {label} images", len(dataset))
        return dataset_features(dataset, self.extractor, cache=cache, batch_size=32, progress=advance)

    @cached_property
    def train_features(self) -> torch.Tensor:
        return self.dataset_features(self.train, "training")

    @cached_property
    def holdout_features(self) -> torch.Tensor:
        return self.dataset_features(self.holdout, "holdout")

    @cached_property
    def empty_embedding(self) -> Conditioning:
        """The unconditional branch of guidance, as the model's family builds it."""
        return self.pipeline.unconditional()

    def embed(self, captions: list[str]) -> Conditioning:
        return self.pipeline.encode_prompts(captions, batch_size=max(1, self.policy.sampling.batch_size))

    @property
    def latent_side(self) -> int:
        return self.pipeline.latent_side(self.policy.sampling.resolution)

    def generate(self, groups: list[PromptGroup], *, per_group: int, stream: str, label: str) -> torch.Tensor:
        """``per_group`` seeded images for each group, group by group: ``[len(groups) * per_group, 3, H, W]``.

        Seeds depend on the group's index among all training captions, not on which groups are
        chosen, so a prompt's images are the same whatever else is attacked.
        """
        parts = [images for _, images in self.generate_groups(groups, per_group=per_group, stream=stream, label=label)]
        return torch.cat(parts) if parts else torch.empty(0, 3, self.image_side, self.image_side)

    def generate_groups(
        self, groups: list[PromptGroup], *, per_group: int, stream: str, label: str
    ) -> Iterator[tuple[PromptGroup, torch.Tensor]]:
        """``generate`` one group at a time, lazily: each group's ``[per_group, 3, H, W]`` images as soon as
        they are done, from batches that span prompts (full batches whatever ``per_group`` is); prompts are
        embedded a batch at a time, so memory holds one batch and one group, never the whole list.
        Seeds come from the group's index among all training captions (see ``generate``)."""
        from memaudit.sampling.generate import generate_stream
        from memaudit.sampling.seeds import sample_seed

        sampling = self.policy.sampling
        chunk = max(1, sampling.batch_size)

        def requests():
            for start in range(0, len(groups), chunk):
                part = groups[start : start + chunk]
                for group, embedding in zip(part, self.embed([group.caption for group in part]), strict=True):
                    for k in range(per_group):
                        yield embedding, sample_seed(sampling.seed, stream, group.index * per_group + k)

        images = generate_stream(
            self.pipeline,
            requests(),
            self.empty_embedding,
            batch_size=chunk,
            progress=self.progress.stage(label, len(groups) * per_group),
            **self._sampler,
        )
        for group in groups:
            yield group, self.conform_images(torch.stack(list(islice(images, per_group))))

    @property
    def _sampler(self) -> dict:
        sampling = self.policy.sampling
        return {
            "num_inference_steps": sampling.num_inference_steps,
            "guidance_scale": sampling.guidance_scale,
            "latent_size": self.latent_side,
            "scheduler": sampling.scheduler,
        }

    def generate_from(self, embeddings: Conditioning, *, seeds: list[int], progress=None) -> torch.Tensor:
        """One image per (text embedding, seed) with the policy's sampler, at the comparison side."""
        from memaudit.sampling.generate import generate_images

        sampling = self.policy.sampling
        images = generate_images(
            self.pipeline,
            embeddings,
            self.empty_embedding,
            seeds=seeds,
            batch_size=sampling.batch_size,
            progress=progress,
            **self._sampler,
        )
        return self.conform_images(images)

    def conform_images(self, images: torch.Tensor) -> torch.Tensor:
        """Generated images at ``image_side``, 3 channels."""
        return torch.stack([self._conform(image) for image in images]) if len(images) else images
