"""BioViL-T alignment: the metric's known answers, local-weights loading, and the scan check."""

from __future__ import annotations

import json

import pytest
import torch

from memaudit.alignment.biovil_t import BioViLT, split_sentences
from memaudit.features import ExtractorUnavailable
from memaudit.metrics.alignment import alignment_score, mean_sentence_embedding


def test_alignment_score_known_answer():
    images = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    texts = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    assert alignment_score(images, texts) == pytest.approx((2**-0.5 + 1.0) / 2)
    with pytest.raises(ValueError, match="matching"):
        alignment_score(images, texts[:1])


def test_report_embedding_is_the_normalised_sentence_mean():
    sentences = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert mean_sentence_embedding(sentences).tolist() == pytest.approx([2**-0.5, 2**-0.5])
    assert split_sentences("No acute process. Small effusion!\nStable.") == [
        "No acute process.",
        "Small effusion!",
        "Stable.",
    ]


def test_refuses_without_weights(tmp_path):
    with pytest.raises(ExtractorUnavailable, match="needs local weights"):
        BioViLT(None)
    with pytest.raises(ExtractorUnavailable, match="needs text/config.json"):
        BioViLT(tmp_path)


@pytest.fixture(scope="module")
def biovil_weights(tmp_path_factory):
    """A local BioViL-T weights folder in the documented layout, holding random weights."""
    from health_multimodal.image.model.model import ImageModel
    from health_multimodal.image.model.types import ImageEncoderType
    from health_multimodal.text.model import CXRBertConfig, CXRBertModel, CXRBertTokenizer
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("biovil")
    words = "[PAD] [UNK] [CLS] [SEP] [MASK] no acute process . small left pleural effusion stable".split()
    tokenizer = CXRBertTokenizer(vocab={word: index for index, word in enumerate(words)})
    torch.manual_seed(0)
    config = CXRBertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        projection_size=128,
    )
    CXRBertModel(config).save_pretrained(root / "text")
    tokenizer.save_pretrained(root / "text")
    image_model = ImageModel(img_encoder_type=ImageEncoderType.RESNET50_MULTI_IMAGE, joint_feature_size=128)
    save_file({k: v.contiguous() for k, v in image_model.state_dict().items()}, str(root / "image.safetensors"))
    return root


def test_loads_local_weights_and_embeds(biovil_weights):
    model = BioViLT(biovil_weights)
    images = model.embed_images(torch.rand(3, 1, 20, 20, generator=torch.Generator().manual_seed(0)))
    reports = model.embed_reports(["No acute process.", "Small left pleural effusion. Stable.", "no"])
    assert images.shape == reports.shape == (3, 128)
    assert torch.allclose(images.norm(dim=1), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(reports.norm(dim=1), torch.ones(3, dtype=torch.float64))


@pytest.mark.slow
def test_scan_reports_alignment_when_enabled(biovil_weights, tiny_folder, tmp_path, capsys, tiny_pipeline):
    from memaudit.cli import run
    from memaudit.tiny.memorizer import build_memorizer
    from tests.scan.test_ground_truth import POLICY

    _, train, holdout, _ = build_memorizer(tiny_pipeline, tmp_path, planted=1, generic=3, holdout=6)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        POLICY.replace(
            "  fid: {required: true}",
            f"  fid: {{required: true}}\n  alignment: {{enabled: true, required: true, weights: {biovil_weights}}}",
        )
        + "  alignment: {metric: alignment.score, at_least: -1.0, severity: warn}\n"
    )
    code = run(
        [
            "scan",
            str(tiny_folder),
            "--train",
            str(train),
            "--holdout",
            str(holdout),
            "--policy",
            str(policy),
            "--out",
            str(tmp_path / "out"),
            "--feature-cache",
            str(tmp_path / "cache"),
        ]
    )
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert code == 0, capsys.readouterr()
    assert result["checks"]["alignment"]["status"] == "ok"
    assert -1.0 <= result["checks"]["alignment"]["metrics"]["alignment.score"] <= 1.0
