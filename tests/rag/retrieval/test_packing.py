"""Context packing: budget, drops with reasons, lost-in-the-middle order, citations with source age."""

from __future__ import annotations

import pytest

from pilothouse.rag.packing import PackItem, context_budget, lost_in_the_middle, pack


def words(text: str) -> int:
    return len(text.split())


def item(i: int, n_words: int, **meta: object) -> PackItem:
    return PackItem(f"c{i}", " ".join([f"w{i}"] * n_words), 1.0 - i / 100, meta or None)


def test_budget_arithmetic() -> None:
    assert context_budget(2048, prompt_tokens=100, answer_tokens=512) == 1436
    assert context_budget(100, prompt_tokens=100, answer_tokens=512) == 0


def test_lost_in_the_middle_puts_the_weakest_in_the_middle() -> None:
    assert lost_in_the_middle(5) == [0, 2, 4, 3, 1]
    assert lost_in_the_middle(4) == [0, 2, 3, 1]
    assert lost_in_the_middle(1) == [0]
    assert lost_in_the_middle(0) == []


def test_packs_best_first_within_budget_and_reports_drops() -> None:
    items = [item(0, 10), item(1, 50), item(2, 10), item(3, 10, _flags=["injection"])]
    # each block: "[00]" header line (1 word) + the words
    packed = pack(items, budget=25, count_tokens=words, drop_flags={"injection"})
    assert [c.chunk_id for c in packed.citations] == ["c0", "c2"]
    assert packed.tokens == 22 <= packed.budget
    assert {(d.chunk_id, d.reason) for d in packed.dropped} == {("c1", "budget"), ("c3", "flagged")}
    assert packed.context.startswith("[1]\n")
    assert "[2]\n" in packed.context


def test_duplicates_and_max_chunks() -> None:
    a = PackItem("a", "same  text", 0.9)
    b = PackItem("b", "same text", 0.8)
    c = PackItem("c", "other", 0.7)
    d = PackItem("d", "more", 0.6)
    packed = pack([a, b, c, d], budget=1000, count_tokens=words, max_chunks=2)
    assert [x.chunk_id for x in packed.citations] == ["a", "c"]
    assert [(x.chunk_id, x.reason) for x in packed.dropped] == [("b", "duplicate"), ("d", "max_chunks")]


def test_order_markers_and_citation_metadata() -> None:
    items = [
        PackItem(
            f"c{i}",
            f"text {i}",
            1.0 - i / 10,
            {
                "_source": f"docs/{i}.md",
                "_title": f"T{i}",
                "_document": f"d{i}",
                "_position": i,
                "_indexed_at": 1000.0,
                "_modified_at": 400.0,
            },
        )
        for i in range(4)
    ]
    packed = pack(items, budget=1000, count_tokens=words, now=1000.0)
    # ranks 0,1,2,3 read as 0,2,3,1; markers number the reading order
    assert [c.chunk_id for c in packed.citations] == ["c0", "c2", "c3", "c1"]
    assert [c.marker for c in packed.citations] == [1, 2, 3, 4]
    first = packed.citations[0]
    assert (first.source, first.title, first.document, first.position) == ("docs/0.md", "T0", "d0", 0)
    assert first.age_seconds == pytest.approx(600.0)
    assert packed.context.splitlines()[0] == "[1] T0"
    assert packed.to_json()["citations"][1]["chunk_id"] == "c2"
    plain = pack(items, budget=1000, count_tokens=words, reorder=False)
    assert [c.chunk_id for c in plain.citations] == ["c0", "c1", "c2", "c3"]


def test_zero_budget_packs_nothing_and_negative_is_refused() -> None:
    packed = pack([item(0, 3)], budget=0, count_tokens=words)
    assert packed.citations == [] and packed.context == "" and packed.dropped[0].reason == "budget"
    with pytest.raises(ValueError):
        pack([], budget=-1, count_tokens=words)
