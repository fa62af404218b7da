"""The generator of indirect-mode training documents: deterministic, labelled, spans right, sides apart."""

from __future__ import annotations

import pytest

training = pytest.importorskip("training.indirect_documents")


def test_documents_are_deterministic_and_labelled() -> None:
    docs = training.documents("train", 120)
    assert [d.text for d in docs] == [d.text for d in training.documents("train", 120)]
    assert {d.label for d in docs} == {0, 1}
    for doc in docs:
        if doc.label:
            assert doc.kind in training.ATTACK_CLASSES and doc.span is not None
            start, end = doc.span
            assert 0 <= start < end <= len(doc.text)
        else:
            assert doc.kind == "benign" and doc.span is None


def test_generator_sides_share_no_carrier() -> None:
    train = {d.carrier for d in training.documents("train", 200)}
    test = {d.carrier for d in training.documents("test", 200)}
    assert train and test and not train & test
