"""BioViL-T (hi-ml-multimodal): projected image and report embeddings from local weights.

Weights folder layout (from microsoft/BiomedVLP-BioViL-T, copied by the user; never downloaded):
    WEIGHTS/text/                 the CXR-BERT model and tokenizer (config.json, vocab.txt, weights)
    WEIGHTS/image.safetensors     the image model state dict, or
    WEIGHTS/biovil_t_image_model_proj_size_128.pt  the original pickle (needs --allow-pickle)
Images go through BioViL-T's inference transform (resize 512, centre crop 448, 3 channels).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from memaudit.checkpoint.files import refuse_pickle
from memaudit.data.dataset import conform
from memaudit.features.base import ExtractorUnavailable
from memaudit.metrics.alignment import mean_sentence_embedding

RESIZE, CROP = 512, 448
IMAGE_WEIGHT_NAMES = ("image.safetensors", "biovil_t_image_model_proj_size_128.pt")


def split_sentences(report: str) -> list[str]:
    sentences = [part.strip() for part in re.split(r"(?<=[.!?])\s+|\n+", report) if part.strip()]
    return sentences or [report.strip() or "."]


class BioViLT:
    def __init__(self, weights: Path | None, *, allow_pickle: bool = False, device: str = "cpu") -> None:
        from health_multimodal.image.model.model import ImageModel
        from health_multimodal.image.model.types import ImageEncoderType

        self.device = device
        if weights is None:
            raise ExtractorUnavailable(
                "BioViL-T alignment needs local weights: set checks.alignment.weights to a folder with text/ "
                "and image.safetensors; memaudit never downloads weights"
            )
        weights = Path(weights)
        image_file = next((weights / name for name in IMAGE_WEIGHT_NAMES if (weights / name).is_file()), None)
        if not (weights / "text" / "config.json").is_file() or image_file is None:
            raise ExtractorUnavailable(
                f"{weights}: BioViL-T weights folder needs text/config.json and one of {', '.join(IMAGE_WEIGHT_NAMES)}"
            )
        refuse_pickle(image_file, allow_pickle=allow_pickle)
        from health_multimodal.text.model import CXRBertModel, CXRBertTokenizer

        self.tokenizer = CXRBertTokenizer.from_pretrained(weights / "text", local_files_only=True)
        self.text_model = CXRBertModel.from_pretrained(weights / "text", local_files_only=True).eval().to(device)
        self.image_model = ImageModel(img_encoder_type=ImageEncoderType.RESNET50_MULTI_IMAGE, joint_feature_size=128)
        if image_file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(image_file))
        else:
            state = torch.load(image_file, map_location="cpu", weights_only=False)
        self.image_model.load_state_dict(state)
        self.image_model.eval().to(device)

    def _tokens(self, sentences: list[str]) -> dict:
        return self.tokenizer(sentences, padding=True, truncation=True, return_tensors="pt")

    @torch.no_grad()
    def embed_reports(self, reports: list[str]) -> torch.Tensor:
        """``[N, 128]`` normalised report embeddings (mean over each report's sentences)."""
        rows = []
        for report in reports:
            tokens = {k: v.to(self.device) for k, v in self._tokens(split_sentences(report)).items()}
            sentences = self.text_model.get_projected_text_embeddings(
                input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
            )
            rows.append(mean_sentence_embedding(sentences.cpu()))
        return torch.stack(rows)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        gray = conform(image, size=RESIZE, channels=1)
        offset = (RESIZE - CROP) // 2
        return gray[:, offset : offset + CROP, offset : offset + CROP].expand(3, -1, -1)

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor, *, batch_size: int = 8) -> torch.Tensor:
        """``[N, 128]`` normalised projected global image embeddings."""
        rows = []
        for start in range(0, len(images), batch_size):
            batch = torch.stack([self.preprocess(image) for image in images[start : start + batch_size]])
            output = self.image_model(batch.to(self.device))
            rows.append(torch.nn.functional.normalize(output.projected_global_embedding.double(), dim=1).cpu())
        return torch.cat(rows)
