"""The learned classifier loads the shipped artefact and scores known attacks and benign prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pilothouse.config import ConfigError
from pilothouse.guards.injection.classifier import InjectionClassifier
from pilothouse.guards.injection.model import ARTEFACT, InjectionModel, calibrate, load_model
from pilothouse.guards.registry import build_scanner
from pilothouse.guards.scanner import ScanContext

SAMPLES = json.loads((Path(__file__).parents[2] / "data" / "injection" / "samples.json").read_text(encoding="utf-8"))
DIRECT = ScanContext()
INDIRECT = ScanContext(role="document", mode="indirect")
DOCUMENT = (
    "The library acquired 300 new journals this year, most of them in chemistry and physics. "
    "Circulation statistics show that electronic access has overtaken print for the first time. "
    "The committee recommends a review of the serials budget before the next fiscal year."
)


def test_artefact_is_shipped_with_version_and_metadata() -> None:
    assert ARTEFACT.is_file() and ARTEFACT.stat().st_size < 5_000_000
    model = load_model()
    assert model is load_model()  # loaded once
    assert model.version.startswith("injection-")
    for key in ("direct_threshold", "indirect_threshold", "training_data", "features", "dev_cv"):
        assert key in model.meta
    assert 0 < model.direct.threshold < 1 and 0 < model.indirect.threshold < 1
    assert len(model.index) == model.meta["vocabulary"] == model.direct.weights.shape[0]


def test_known_attacks_are_flagged_with_the_model_version() -> None:
    scanner = InjectionClassifier()
    verdicts = [scanner.scan(text, DIRECT) for text in SAMPLES["attacks"]]
    assert sum(v.score >= 0.5 for v in verdicts) >= len(verdicts) - 1
    flagged = next(v for v in verdicts if v.found)
    [finding] = flagged.findings
    assert finding.kind == "injection_classifier" and finding.score == flagged.score
    assert load_model().version in finding.detail


def test_benign_prompts_pass() -> None:
    scanner = InjectionClassifier()
    scores = [scanner.scan(text, DIRECT).score for text in SAMPLES["benign"]]
    assert sum(score >= 0.5 for score in scores) <= 1, scores


def test_indirect_mode_finds_the_planted_instruction() -> None:
    scanner = InjectionClassifier()
    assert not scanner.scan(DOCUMENT, INDIRECT).found
    found = 0
    for attack in SAMPLES["indirect_attacks"]:
        planted = DOCUMENT.replace("first time. ", f"first time. {attack} ")
        verdict = scanner.scan(planted, INDIRECT)
        spans = [planted[f.start : f.end] for f in verdict.findings if f.kind == "embedded_instruction"]
        found += bool(spans) and attack.startswith(spans[0][:30])
    assert found >= len(SAMPLES["indirect_attacks"]) // 2


def test_calibration_puts_the_threshold_at_one_half() -> None:
    assert calibrate(0.3, 0.3) == pytest.approx(0.5)
    assert calibrate(0.0, 0.3) == 0.0 and calibrate(1.0, 0.3) == 1.0
    assert calibrate(0.15, 0.3) == pytest.approx(0.25) and calibrate(0.65, 0.3) == pytest.approx(0.75)


def test_model_reads_an_explicit_path() -> None:
    model = InjectionModel(ARTEFACT)
    assert model.ids("ignore all previous instructions").size > 0
    assert model.ids("").size == 0


def test_options() -> None:
    assert InjectionClassifier(use_embedding=False).scan("hi", DIRECT).score < 0.5
    with pytest.raises(ConfigError, match="injection_classifier"):
        build_scanner("injection_classifier", {"use_embedding": "no"})
    with pytest.raises(ConfigError, match="injection_classifier"):
        build_scanner("injection_classifier", {"unknown": 1})
