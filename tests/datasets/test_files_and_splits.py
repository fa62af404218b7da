"""Dataset items, files and splits (our own logic, no server): validation errors name the line and the field;
JSONL and CSV read back to the same items; splits are deterministic and stable when items are added."""

from __future__ import annotations

import pytest

from pilothouse.datasets.files import dump_csv, dump_jsonl, load_csv, load_jsonl
from pilothouse.datasets.items import ItemError, validate_items, version_hash
from pilothouse.datasets.splits import assign_splits, parse_fractions

ITEMS = [
    {"input": {"question": "What is 2 + 2?"}, "expected": "4", "metadata": {"topic": "maths"}},
    {"id": "capital-fr", "input": "Capital of France?", "expected": "Paris", "context": ["Paris is the capital."]},
    {"input": {"question": "Name a prime", "style": "terse"}, "expected": {"any_of": [2, 3, 5]}, "split": "test"},
    {"input": 'Say, "hi"\nthen stop.', "context": "one passage, with a comma", "metadata": {"n": "1"}},
]


def test_jsonl_round_trip_is_exact() -> None:
    items = validate_items(ITEMS)
    assert load_jsonl(dump_jsonl(items)) == items
    assert items[1]["id"] == "capital-fr"
    assert items[0]["id"] != items[2]["id"] and len(items[0]["id"]) == 16


def test_csv_round_trip_is_exact_for_text_inputs() -> None:
    items = validate_items(ITEMS)
    text = dump_csv(items)
    assert text.splitlines()[0].startswith("id,input,input.question,input.style,expected,expected_json")
    assert load_csv(text) == items


def test_csv_refuses_what_it_cannot_hold() -> None:
    chat = validate_items([{"input": [{"role": "user", "content": "hi"}]}])
    with pytest.raises(ItemError, match="chat messages; CSV cannot hold them: export JSONL"):
        dump_csv(chat)


def test_a_bad_jsonl_line_is_named() -> None:
    text = '{"input": "ok"}\n\n{"input": "x", "expectd": "typo"}\n'
    with pytest.raises(ItemError, match=r"line 3: expectd: Extra inputs are not permitted"):
        load_jsonl(text)
    with pytest.raises(ItemError, match=r"line 2: not valid JSON"):
        load_jsonl('{"input": "ok"}\n{"input": \n')


def test_a_bad_csv_line_and_column_are_named() -> None:
    with pytest.raises(ItemError, match="unknown CSV column 'answer'"):
        load_csv("input,answer\nhi,there\n")
    with pytest.raises(ItemError, match=r"line 3: input: Field required"):
        load_csv("input,expected\nhi,there\n,no input\n")
    with pytest.raises(ItemError, match=r"line 2: give either an `input` cell or `input.NAME` cells"):
        load_csv("input,input.q\nhi,there\n")


def test_duplicates_and_empty_inputs_are_refused() -> None:
    with pytest.raises(ItemError, match=r"item 2: id 'a' was already used by item 1"):
        validate_items([{"id": "a", "input": "x"}, {"id": "a", "input": "y"}])
    with pytest.raises(ItemError, match="identical items without an id"):
        validate_items([{"input": "x"}, {"input": "x"}])
    with pytest.raises(ItemError, match="input is an empty text"):
        validate_items([{"input": "  "}])
    with pytest.raises(ItemError, match="split: String should match pattern"):
        validate_items([{"input": "x", "split": "Test Set"}])


def test_version_hash_depends_on_order() -> None:
    assert version_hash(["a", "b"]) != version_hash(["b", "a"])


def test_splits_are_deterministic_proportional_and_stable() -> None:
    items = validate_items([{"id": f"item-{i}", "input": f"q{i}"} for i in range(2000)])
    fractions = parse_fractions("train=0.8,test=0.2")
    first = assign_splits(items, fractions, seed=3)
    assert first == assign_splits(items, fractions, seed=3)
    share = sum(1 for i in first if i["split"] == "test") / len(first)
    assert 0.17 < share < 0.23
    grown = assign_splits([*items, *validate_items([{"id": "new", "input": "n"}])], fractions, seed=3)
    assert [i["split"] for i in grown[:-1]] == [i["split"] for i in first]
    other = assign_splits(items, fractions, seed=4)
    assert [i["split"] for i in other] != [i["split"] for i in first]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("train=0.8", "at least two splits"),
        ("train=0.8,test=0.3", "add up to 1.1"),
        ("train=x,test=0.5", "write NAME=FRACTION"),
        ("Train=0.5,test=0.5", "lower-case letters"),
        ("train=1,test=0", "between 0 and 1"),
    ],
)
def test_bad_fractions(spec: str, message: str) -> None:
    with pytest.raises(ItemError, match=message):
        parse_fractions(spec)
