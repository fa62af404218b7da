"""The hold-back window: what is split over chunks is caught whole, and text is released once it is safe."""

from __future__ import annotations

import pytest

from pilothouse.guards.policy.engine import ScannerCache, compile_policy
from pilothouse.guards.policy.loader import parse_policy
from pilothouse.guards.policy.streaming import HoldBack
from pilothouse.guards.scanner import ScanContext

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
