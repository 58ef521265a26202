"""ScanResult's JSON: evidence thumbnails travel as base64 PNG bytes, and only in the result's list."""

from __future__ import annotations

import base64
import io
import json

import numpy
import torch
from PIL import Image

from memaudit.results.scan_result import CheckOutcome, EvidenceImage
from memaudit.scan.evidence import evidence_image


def test_evidence_bytes_are_base64_in_json_and_decode_back_to_the_image():
    generated = torch.linspace(0, 1, 3 * 4 * 5).reshape(3, 4, 5)
    item = evidence_image("copy", "study-1", generated=generated, train=torch.zeros(1, 4, 5))
    data = json.loads(item.model_dump_json())
    assert base64.b64decode(data["generated_png"]) == item.generated_png
    parsed = EvidenceImage.model_validate_json(item.model_dump_json())
    assert parsed == item
    decoded = Image.open(io.BytesIO(parsed.generated_png))
    assert decoded.size == (5, 4) and decoded.mode == "RGB"
    assert Image.open(io.BytesIO(parsed.train_png)).mode == "L"
    expected = (generated.permute(1, 2, 0).numpy() * 255).round()
    assert (numpy.asarray(decoded) == expected).all()


def test_a_check_outcome_keeps_its_evidence_out_of_its_own_json():
    item = evidence_image("copy", "study-1", generated=torch.ones(1, 2, 2), train=torch.ones(1, 2, 2))
    outcome = CheckOutcome(status="ok", required=True, evidence_images=[item])
    assert outcome.evidence_images == [item]
    assert "evidence_images" not in outcome.model_dump(mode="json")
