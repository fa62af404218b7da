"""The toxicity scanner: the shipped classifier, its lexicon layer and its training data parser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from training.splits import side
from training.toxicity_data import parse_toxigen, self_written

from pilothouse.guards.scanner import ScanContext
from pilothouse.guards.toxicity import lexicon
from pilothouse.guards.toxicity.model import FEATURE_COUNT, load_model
from pilothouse.guards.toxicity.scanner import ToxicityScanner

pytestmark = pytest.mark.model
DATA = Path(__file__).resolve().parents[1] / "data" / "toxicity"
CTX = ScanContext(role="assistant", direction="output")


def test_toxigen_lines_are_split_into_distinct_statements() -> None:
    raw = (DATA / "toxigen_hate_women_head.txt").read_text(encoding="utf-8")
    statements = parse_toxigen(raw)
    assert len(statements) == len(set(statements)) > 10
    assert all("\\n" not in s and not s.startswith("-") and s == s.strip() and s for s in statements)
    assert "women are all gold diggers" in statements
    assert parse_toxigen("- a\\n- b\\n-\n- b\\n- c\\n-\n") == ["a", "b", "c"]


def test_the_shipped_model_is_versioned_and_shaped_for_its_features() -> None:
    model = load_model()
    assert model.version == "toxicity-lr-1"
    assert model.weights.shape == (FEATURE_COUNT,)
    assert 0.0 < model.threshold < 1.0
    assert model.card["data"]["toxigen_women_dev"] > 0 and model.card["data"]["self_written_dev"] > 0


def test_it_separates_the_dev_side_toxigen_statements_it_was_trained_on() -> None:
    scanner = ToxicityScanner()
    for name, toxic in (("toxigen_hate_women_head.txt", True), ("toxigen_neutral_women_head.txt", False)):
        statements = [s for s in parse_toxigen((DATA / name).read_text(encoding="utf-8")) if side(s) == "dev"]
        flagged = sum(scanner.scan(s, CTX).found for s in statements)
        rate = flagged / len(statements)
        assert (rate >= 0.8) if toxic else (rate <= 0.2), f"{name}: {flagged}/{len(statements)} flagged"


def test_self_written_examples_never_reach_the_holdout_side() -> None:
    rows = self_written()
    assert len(rows) > 100 and all(r.side == "dev" for r in rows)
    assert {r.toxic for r in rows} == {True, False}


def test_a_hateful_sentence_inside_a_long_answer_is_found_where_it_is() -> None:
    intro = "Here is the summary of the meeting you asked for. The budget was approved without changes. " * 4
    hateful = "Muslims are all terrorists and should be banned from this country."
    text = f"{intro}\n\n{hateful}\n\nLet me know if you need anything else."
    verdict = ToxicityScanner().scan(text, CTX)
    assert verdict.found and verdict.score >= load_model().threshold
    toxic = [f for f in verdict.findings if f.kind == "toxicity"]
    assert toxic and all(f.start <= text.index(hateful) < f.end for f in toxic)


@pytest.mark.parametrize(
    "text",
    [
        "Kill the process and restart the server.",
        "The build failed because of a typo in the config file.",
        "Women make up almost half of the workforce in this sector.",
        "Our new office opens in March, with space for forty people.",
    ],
)
def test_ordinary_text_passes(text: str) -> None:
    verdict = ToxicityScanner().scan(text, CTX)
    assert not verdict.found, verdict


def test_directed_insults_and_slurs_are_caught_by_the_lexicon_even_without_the_classifier() -> None:
    scanner = ToxicityScanner(threshold=1.0)  # the classifier alone never reaches 1
    verdict = scanner.scan("Honestly, you are a worthless idiot.", CTX)
    assert [f.kind for f in verdict.findings] == ["directed_insult"]
    start, end = verdict.findings[0].start, verdict.findings[0].end
    assert "you are a worthless idiot" in "Honestly, you are a worthless idiot."[start:end]
    assert not ToxicityScanner(threshold=1.0, use_lexicon=False).scan("you are a worthless idiot", CTX).found


def test_profanity_alone_is_a_feature_not_a_finding() -> None:
    assert lexicon.lexicon_hits("this damn printer is a piece of crap") == []
    assert lexicon.lexical_features("this is crap")[0] > 0
    assert lexicon.lexical_features("a calm sentence") == [0.0] * len(lexicon.FEATURES)


def test_innocent_senses_are_not_slurs() -> None:
    for text in ("a chink in the armour", "the dykes hold back the sea", "flame retardant fabric"):
        assert lexicon.lexicon_hits(text) == [], text


def test_scores_are_probabilities_of_the_logistic_model() -> None:
    model = load_model()
    features = np.zeros((2, FEATURE_COUNT), dtype=np.float32)
    features[1, :] = 10.0
    p = model.probabilities(features)
    assert p.shape == (2,) and np.all((p >= 0) & (p <= 1))
    assert p[0] == pytest.approx(1 / (1 + np.exp(-model.bias)), rel=1e-5)


@pytest.mark.parametrize("threshold", [0, -1, 1.5])
def test_a_threshold_outside_0_1_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        ToxicityScanner(threshold=threshold)
