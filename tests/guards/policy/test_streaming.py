"""The hold-back window: what is split over chunks is caught whole, and text is released once it is safe."""

from __future__ import annotations

import pytest

from pilothouse.guards.policy.engine import ScannerCache, compile_policy
from pilothouse.guards.policy.loader import parse_policy
from pilothouse.guards.policy.streaming import HoldBack
from pilothouse.guards.scanner import ScanContext
from tests.guards.policy.fakes import Counting

CTX = ScanContext(role="assistant", direction="output")
CARD = "4111 1111 1111 1111"


def hold(action: str, window: int = 64) -> HoldBack:
    policy = compile_policy(
        parse_policy(f"name: p\noutput:\n  - {{scanner: test_pii, action: {action}}}\n"), 1, ScannerCache()
    )
    return HoldBack(policy.output, CTX, window=window)


def stream(h: HoldBack, pieces: list[str]) -> tuple[list[str], str]:
    released = [h.feed(p).text for p in pieces]
    return released, "".join(released) + h.finish().text


def pieces_of(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


ANSWER = (
    "Thanks for your order. The card on file is " + CARD + " and the receipt went to ann@example.org. "
    "Anything else I can help you with today? We are open from nine to five on weekdays."
)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16])
def test_a_card_number_split_over_chunks_is_redacted(size: int) -> None:
    h = hold("redact")
    released, whole = stream(h, pieces_of(ANSWER, size))
    assert CARD not in whole and "ann@example.org" not in whole
    assert whole == ANSWER.replace(CARD, "<CREDIT_CARD>").replace("ann@example.org", "<EMAIL_ADDRESS>")
    assert any(released), "text is released while the stream flows, not only at its end"
    (record,) = h.run.records.values()
    assert record.decision == "redact" and record.kinds == {"CREDIT_CARD", "EMAIL_ADDRESS"}


def test_no_released_piece_ever_holds_part_of_the_number() -> None:
    released, _ = stream(hold("redact"), [*pieces_of("x" * 70 + " card 4111 ", 4), "1111 ", "1111 ", "1111", " ok"])
    digits = "".join(released)
    assert "4111" not in digits and "1111" not in digits


def test_a_block_ends_the_stream_before_the_number_is_released() -> None:
    h = hold("block")
    sent: list[str] = []
    blocked = None
    for piece in pieces_of(ANSWER, 3):
        release = h.feed(piece)
        if release.blocked is not None:
            blocked = release.blocked
            break
        sent.append(release.text)
    else:
        release = h.finish()
        blocked = release.blocked
    assert blocked is not None and blocked.rule.rule.scanner == "test_pii"
    assert "4111" not in "".join(sent)
    assert h.feed("more").blocked is blocked and h.finish().blocked is blocked


def test_text_is_held_back_by_the_window_only() -> None:
    h = hold("redact", window=8)
    released, whole = stream(h, pieces_of("a" * 40, 1))
    assert whole == "a" * 40
    emitted = len("".join(released))
    assert 40 - 8 - h.step <= emitted <= 40 - 8


def test_a_clean_stream_comes_out_unchanged() -> None:
    text = "No numbers and no addresses in this answer, just words. " * 5
    _, whole = stream(hold("redact"), pieces_of(text, 4))
    assert whole == text


def test_the_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        hold("redact", window=0)


def compiled(rules: str) -> HoldBack:
    return HoldBack(compile_policy(parse_policy(f"name: p\noutput:\n{rules}"), 1, ScannerCache()).output, CTX)


def test_a_clean_stream_is_scanned_about_twice_per_character_by_local_rules() -> None:
    Counting.seen.clear()
    text = "Plain words and nothing to find here, sentence after sentence. " * 33  # 2,079 characters
    _, whole = stream(compiled("  - {scanner: test_counting, action: block}\n"), pieces_of(text, 4))
    assert whole == text
    assert sum(Counting.seen) <= 2.1 * len(text) and max(Counting.seen) <= 128


def test_whole_text_rules_never_see_fragments() -> None:
    Counting.seen.clear()
    text = "word " * 400  # 2,000 characters
    rules = "  - {scanner: test_counting, action: block, options: {scope: whole}}\n"
    _, whole = stream(compiled(rules), pieces_of(text, 4))
    assert whole == text
    assert min(Counting.seen) >= 512 and Counting.seen[-1] == len(text)  # checkpoints, then the whole answer
    assert sum(Counting.seen) <= 2 * len(text)


def test_a_schema_rule_judges_the_complete_answer_only() -> None:
    ctx = ScanContext(role="assistant", direction="output", json_schema={"type": "object", "required": ["a"]})
    rules = compile_policy(parse_policy("name: p\noutput:\n  - {scanner: json_schema}\n"), 1, ScannerCache()).output
    good = '{"a": "' + "x" * 300 + '"}'
    h = HoldBack(rules, ctx)
    released, whole = stream(h, pieces_of(good, 3))
    assert whole == good and any(released)  # partial JSON was released, not judged
    h = HoldBack(rules, ctx)
    for piece in pieces_of('{"b": "' + "x" * 300 + '"}', 3):
        assert h.feed(piece).blocked is None
    end = h.finish()
    assert end.blocked is not None and end.text == "" and end.blocked.kinds == {"schema_violation"}


def test_a_canary_is_never_released_nor_split() -> None:
    from pilothouse.guards.leakage import plant_canary
    from pilothouse.guards.policy.canary import MASK

    _, token = plant_canary("Be helpful.")
    ctx = ScanContext(role="assistant", direction="output", system_prompt="Be helpful.", canary=token)
    rules = compile_policy(
        parse_policy("name: p\noutput:\n  - {scanner: system_prompt_leak, action: flag}\n"), 1, ScannerCache()
    ).output
    text = "x" * 90 + f" the marker is {token} and more text after it " + "y" * 100
    for size in (1, 3, 7):
        h = HoldBack(rules, ctx)
        released, whole = stream(h, pieces_of(text, size))
        assert whole == text.replace(token, MASK)
        assert not any("CANARY" in piece or token[-6:] in piece for piece in released)
        (record,) = h.run.records.values()
        assert record.decision == "flag" and "canary" in record.kinds
