"""Policy schema and strict loading."""

from __future__ import annotations

import json

import pytest

from memaudit.errors import PolicyError
from memaudit.paths import POLICIES_DIR
from memaudit.policy import METRICS, load_policy, policy_json_schema

MINIMAL = "name: t\nrules:\n  no-extraction:\n    metric: extraction.extracted_count\n    at_most: 0\n"


def _write(tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["hospital-release", "ci", "research"])
def test_shipped_policies_validate_by_name(name):
    loaded = load_policy(name)
    assert loaded.path == POLICIES_DIR / f"{name}.yaml"
    assert loaded.policy.name == name
    assert len(loaded.sha256) == 64


def test_defaults_follow_the_design():
    policy = load_policy("ci").policy
    assert policy.checks.noise_magnitude.calibration_quantile == 0.99
    assert load_policy("hospital-release").policy.checks.extraction.edge_threshold == 0.1
    # min clique scales with the generation budget: 10 at Carlini's 500, at least 3
    extraction = policy.checks.extraction.model_copy(update={"generations": 500})
    assert extraction.effective_min_clique == 10


def test_misspelled_key_names_key_file_and_nearest_valid_key(tmp_path):
    path = _write(tmp_path, MINIMAL + "checks:\n  extraction:\n    edge_treshold: 0.2\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert str(path) in message
    assert "unknown key 'checks.extraction.edge_treshold'; did you mean 'edge_threshold'?" in message


def test_misspelled_rule_key_inside_a_rule_id(tmp_path):
    path = _write(tmp_path, "name: t\nrules:\n  r:\n    metric: fid.fid\n    at_mots: 3\n")
    with pytest.raises(PolicyError, match="unknown key 'rules.r.at_mots'; did you mean 'at_most'"):
        load_policy(path)


def test_unknown_metric_suggests_the_closest(tmp_path):
    path = _write(tmp_path, "name: t\nrules:\n  r:\n    metric: nearest_neighbour.near_copy\n    at_most: 0.1\n")
    with pytest.raises(PolicyError, match="did you mean 'nearest_neighbour.near_copy_rate'"):
        load_policy(path)


def test_duplicate_yaml_key_is_an_error(tmp_path):
    path = _write(tmp_path, MINIMAL + "name: again\n")
    with pytest.raises(PolicyError, match="duplicate key 'name'"):
        load_policy(path)


def test_rule_needs_exactly_one_bound(tmp_path):
    path = _write(tmp_path, "name: t\nrules:\n  r:\n    metric: fid.fid\n    at_most: 3\n    at_least: 1\n")
    with pytest.raises(PolicyError, match="exactly one of at_most or at_least"):
        load_policy(path)


def test_rule_on_a_disabled_check_is_refused(tmp_path):
    path = _write(tmp_path, MINIMAL + "checks:\n  extraction:\n    enabled: false\n")
    with pytest.raises(PolicyError, match="checks.extraction is disabled"):
        load_policy(path)


def test_out_of_range_values_name_the_key(tmp_path):
    path = _write(tmp_path, MINIMAL + "checks:\n  noise_magnitude:\n    calibration_quantile: 1.5\n")
    with pytest.raises(PolicyError, match="key 'checks.noise_magnitude.calibration_quantile'"):
        load_policy(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(tmp_path / "none.yaml")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(_write(tmp_path, "name: [unclosed\n"))


def test_rule_semantics():
    rules = load_policy("research").policy.rules
    assert rules["extracted-images"].passes(0) and not rules["extracted-images"].passes(1)
    assert rules["average-min-distance"].passes(0.05) and not rules["average-min-distance"].passes(0.04)


def test_json_schema_lists_checks_and_is_json():
    schema = json.loads(json.dumps(policy_json_schema()))
    assert schema["title"] == "memaudit policy"
    assert {"sampling", "checks", "rules"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_every_metric_belongs_to_a_check_of_the_policy():
    from memaudit.policy.model import Checks

    assert {spec.check for spec in METRICS.values()} <= set(Checks.model_fields)


def test_unknown_extractor_is_refused_with_the_registry_names(tmp_path):
    path = _write(tmp_path, MINIMAL + "checks:\n  nearest_neighbour:\n    extractor: inception\n")
    names = "pixels, rad-dino, xrv-densenet121"
    with pytest.raises(PolicyError, match=f"unknown extractor 'inception'; available: {names}"):
        load_policy(path)


@pytest.mark.parametrize(
    ("noise", "message"),
    [
        ("{detector: hessian}", "unknown triage detector 'hessian'; available: wen, asthana, consistency, attention"),
        ("{detector: consistency, generations: 1}", "detector 'consistency' needs generations >= 2"),
        ("{detector: asthana, steps: 3}", "detector 'asthana' scores the first step only: steps must be 1"),
    ],
)
def test_triage_detector_settings_are_checked_naming_the_file(tmp_path, noise, message):
    path = _write(tmp_path, MINIMAL + f"checks:\n  noise_magnitude: {noise}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_the_default_detector_is_wen():
    assert load_policy("ci").policy.checks.noise_magnitude.detector == "wen"


def test_a_comparison_side_below_the_tiles_is_refused():
    from memaudit.policy.checks import ExtractionCheck

    with pytest.raises(ValueError, match="comparison_side 3 is smaller than the 4 tiles per side"):
        ExtractionCheck(comparison_side=3)
    assert ExtractionCheck(comparison_side=4).comparison_side == 4


def test_a_ranked_budget_that_fills_a_cap_needs_the_cap():
    from memaudit.policy.checks import ExtractionCheck

    with pytest.raises(ValueError, match="ranked_prompts 'fill' spends what max_prompts leaves; set max_prompts"):
        ExtractionCheck(ranked_prompts="fill")
    capped = ExtractionCheck(ranked_prompts="fill", random_prompts=3, max_prompts=10)
    assert [capped.ranked_budget(flagged) for flagged in (0, 4, 7, 20)] == [7, 3, 0, 0]
    assert ExtractionCheck(ranked_prompts=5).ranked_budget(100) == 5
