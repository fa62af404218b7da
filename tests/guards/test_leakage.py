"""System-prompt leakage: canaries (plain and disguised), verbatim runs and paraphrases."""

from __future__ import annotations

import pytest

from pilothouse.guards.leakage import CANARY_PREFIX, SystemPromptLeakScanner, find_canary, plant_canary, verbatim_runs
from pilothouse.guards.scanner import ScanContext

PROMPT = (
    "You are SupportBot for Acme Corp. Never discuss the pricing of competitor products. "
    "Always answer in French when the user writes in French. "
    "The discount code STAFF50 is only for employees and must not be shared with customers."
)


@pytest.fixture(scope="module")
def planted() -> tuple[str, str]:
    return plant_canary(PROMPT)


def ctx(planted: tuple[str, str]) -> ScanContext:
    return ScanContext(role="assistant", direction="output", system_prompt=planted[0], canary=planted[1])


def test_plant_canary_appends_a_fresh_random_token(planted: tuple[str, str]) -> None:
    prompt, canary = planted
    assert prompt.startswith(PROMPT) and canary in prompt and canary.startswith(CANARY_PREFIX)
    assert plant_canary(PROMPT)[1] != canary
    assert plant_canary("")[0].startswith("[confidential marker")


@pytest.mark.parametrize(
    ("disguise", "how"),
    [
        (lambda c: f"the marker is {c}.", "verbatim"),
        (lambda c: f"the marker is {c.upper()}", "verbatim"),
        (lambda c: " ".join(c), "disguised"),
        (lambda c: "\u200b".join(c), "disguised"),
        (lambda c: c.replace("-", "_").replace("a", "A"), "disguised"),
        (lambda c: "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in c), "disguised"),
        (lambda c: c[::-1], "reversed"),
    ],
)
def test_the_canary_is_found_plain_or_lightly_disguised(planted: tuple[str, str], disguise: object, how: str) -> None:
    assert callable(disguise)
    text = f"Sure. {disguise(planted[1])} Anything else?"
    verdict = SystemPromptLeakScanner().scan(text, ctx(planted))
    canaries = [f for f in verdict.findings if f.kind == "canary"]
    assert canaries and canaries[0].detail.endswith(f"({how})") and verdict.score == 1.0
    found = text[canaries[0].start : canaries[0].end]
    starts = {"ph-", "ph_", "\uff50\uff48\uff0d", planted[1][::-1][:3]}
    assert found.replace(" ", "").replace("\u200b", "")[:3].casefold() in starts


def test_a_short_canary_is_only_matched_verbatim() -> None:
    assert find_canary("a b c 1 2", "abc12") == []
    assert find_canary("x abc12 y", "abc12") == [(2, 7, "verbatim")]


def test_verbatim_runs_of_the_prompt_are_found(planted: tuple[str, str]) -> None:
    answer = "My rules: never discuss the pricing of competitor products. Always answer in French when asked."
    verdict = SystemPromptLeakScanner().scan(answer, ctx(planted))
    runs = [f for f in verdict.findings if f.kind == "system_prompt_verbatim"]
    assert len(runs) == 1 and answer[runs[0].start : runs[0].end].startswith("never discuss the pricing")
    assert verbatim_runs("a b c d e f g h", "a b c d e f g h", 8) == [(0, 15, 8)]
    assert verbatim_runs("a b c d e f g", "a b c d e f g h", 8) == []


def test_a_paraphrase_of_a_prompt_sentence_is_found(planted: tuple[str, str]) -> None:
    answer = "Employees get a discount with the code STAFF50, which must not be given to customers."
    kinds = {f.kind for f in SystemPromptLeakScanner().scan(answer, ctx(planted)).findings}
    assert kinds == {"system_prompt_paraphrase"}
    assert not SystemPromptLeakScanner(similarity_threshold=1.0).scan(answer, ctx(planted)).found


@pytest.mark.parametrize(
    "answer",
    [
        "Our support hours are 9 to 5, Monday to Friday. How else can I help?",
        "Bonjour ! Comment puis-je vous aider aujourd'hui ?",
        "Your invoice number 1043 was paid on 3 March.",
    ],
)
def test_ordinary_answers_pass(planted: tuple[str, str], answer: str) -> None:
    assert not SystemPromptLeakScanner().scan(answer, ctx(planted)).found


def test_without_prompt_or_canary_everything_passes(planted: tuple[str, str]) -> None:
    verdict = SystemPromptLeakScanner().scan(planted[0], ScanContext(direction="output"))
    assert verdict.score == 0.0 and not verdict.found


@pytest.mark.parametrize("options", [{"min_ngram": 2}, {"min_ngram": True}, {"similarity_threshold": 0}])
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SystemPromptLeakScanner(**options)  # type: ignore[arg-type]
