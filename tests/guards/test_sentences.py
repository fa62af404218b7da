"""How the embedding scanners cut a text: sentences with their offsets, and windows for long texts."""

from __future__ import annotations

import time

from pilothouse.guards.sentences import MAX_WINDOW_CHARS, TARGET_WINDOWS, scan_pieces, sentence_spans, windows


def test_sentences_keep_their_offsets() -> None:
    text = '  He said "no." Then he left!\n\n- a list item\nAnd a last line'
    spans = sentence_spans(text)
    assert [s.text for s in spans] == ['He said "no."', "Then he left!", "- a list item", "And a last line"]
    assert all(text[s.start : s.end] == s.text for s in spans)
    assert sentence_spans("") == [] and sentence_spans(" \n ") == []


def test_short_texts_are_compared_sentence_by_sentence_long_ones_in_windows() -> None:
    short = "One. Two. Three."
    assert [p.text for p in scan_pieces(short)] == ["One.", "Two.", "Three."]
    long = " ".join(f"Sentence number {i} is here." for i in range(TARGET_WINDOWS * 4))
    pieces = scan_pieces(long)
    assert len(pieces) <= TARGET_WINDOWS + 1
    assert all(long[p.start : p.end] == p.text and p.end - p.start <= MAX_WINDOW_CHARS for p in pieces)
    assert pieces[0].start == 0 and pieces[-1].end == len(long)


def test_a_sentence_longer_than_a_window_is_cut() -> None:
    text = "word " * 1000
    pieces = windows(text, max_chars=300)
    assert all(p.end - p.start <= 300 for p in pieces) and pieces[-1].end == len(text.rstrip())


def test_runs_of_punctuation_are_linear() -> None:
    started = time.perf_counter()
    for text in ("." * 50_000, "!?" * 25_000, '."' * 25_000, "\n" * 50_000, ("\n" + " " * 100) * 500):
        sentence_spans(text)
    assert time.perf_counter() - started < 5.0  # quadratic matching took about a minute for the first one
