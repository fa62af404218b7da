"""The int8 variant of all-MiniLM-L6-v2: per-channel int8 weights, vectors close to the fp32 model's but its
own (a different model id in RAG), the same vector for a text alone or in any batch."""

from __future__ import annotations

import numpy as np
import pytest

from pilothouse.embeddings import EMBEDDING_DIM, MiniLMEmbedder, MiniLMError, load_minilm
from pilothouse.embeddings.int8_weights import dequantize_columns, quantize_columns
from pilothouse.embeddings.minilm import default_model_dir

pytestmark = pytest.mark.model

LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog while the band plays on."] * 40)
TEXTS = [
    "Hello world",
    "How do I reset my password if I forgot the email address on the account?",
    LONG_TEXT,
    "東京は日本の首都です。我爱自然语言处理。",
    "The retrieval of scientific abstracts by indexing terms and citation links in a library catalogue.",
    "x y",
]


@pytest.fixture(scope="module")
def int8() -> MiniLMEmbedder:
    return load_minilm(int8=True)


def test_quantize_columns_bounds_the_error_per_output_channel() -> None:
    rng = np.random.default_rng(7)
    weight = rng.normal(size=(48, 10)).astype(np.float32) * np.linspace(0.01, 3.0, 10, dtype=np.float32)
    weight[:, 3] = 0.0  # a column of zeros keeps a usable scale
    q, scale = quantize_columns(weight)
    assert q.dtype == np.int8 and q.shape == weight.shape and scale.shape == (10,) and scale.dtype == np.float32
    assert int(np.abs(q.astype(np.int16)).max()) == 127 and not np.any(q[:, 3])
    error = np.abs(dequantize_columns(q, scale) - weight)
    assert np.all(error <= scale / 2 + 1e-7)  # rounding to nearest, per column
    assert np.all(np.abs(q.astype(np.int16)).max(axis=0)[[0, 1, 2, 4]] == 127)  # each column uses the full range


def test_close_to_fp32_but_its_own_vectors(int8: MiniLMEmbedder) -> None:
    fp32 = load_minilm()
    a, b = fp32.embed(TEXTS), int8.embed(TEXTS)
    assert b.shape == (len(TEXTS), EMBEDDING_DIM) and b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(a * b, axis=1)
    assert float(cosines.min()) > 0.97 and float(cosines.mean()) > 0.985
    assert float(cosines.max()) < 0.99999  # not the fp32 graph under another name


def test_a_text_gets_the_same_vector_alone_and_in_any_batch(int8: MiniLMEmbedder) -> None:
    """Activations are quantized per tensor, so texts run one per pass: batching must not move a vector."""
    together = int8.embed(TEXTS, batch_size=8)
    alone = np.stack([int8.embed([t])[0] for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    np.testing.assert_allclose(int8.embed(TEXTS[::-1]), together[::-1], atol=1e-6)


def test_paraphrase_is_closer_than_unrelated(int8: MiniLMEmbedder) -> None:
    base, para, other = int8.embed(
        [
            "The cat sits on the mat",
            "A kitten is sitting on a rug",
            "Stock markets fell sharply today after the central bank raised rates.",
        ]
    )
    assert float(base @ para) > float(base @ other) + 0.3


def test_int8_is_onnxruntime_only_and_cached_apart() -> None:
    with pytest.raises(MiniLMError, match="ONNX Runtime only"):
        MiniLMEmbedder(backend="numpy", int8=True)
    assert load_minilm(int8=True) is load_minilm(int8=True)
    assert load_minilm(int8=True) is not load_minilm()
    assert load_minilm(int8=True).backend == "onnxruntime"


def test_int8_graph_parses_and_quantizes_every_linear_layer() -> None:
    onnx = pytest.importorskip("onnx")
    from safetensors.numpy import load_file

    from pilothouse.embeddings.onnx_graph import CONTRIB, build_graph
    from pilothouse.embeddings.types import BertConfig

    weights = load_file(str(default_model_dir() / "model.safetensors"))
    graph = build_graph(weights, BertConfig(hidden_size=384, num_heads=12, num_layers=6, eps=1e-12), int8=True)
    model = onnx.load_from_string(graph.model)
    assert model.SerializeToString() == graph.model
    quantized = [n for n in model.graph.node if n.op_type == "DynamicQuantizeMatMul"]
    assert len(quantized) == 6 * 6 and all(n.domain == CONTRIB for n in quantized)  # Q K V O, FFN in and out
    assert not [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in graph.initializers]
    assert {o.domain: o.version for o in model.opset_import} == {"": 17, CONTRIB: 1}
    stored = {t.name: t.data_type for t in model.graph.initializer}
    assert stored["encoder.layer.0.intermediate.dense.weight_int8"] == onnx.TensorProto.INT8
    assert graph.initializers["encoder.layer.0.intermediate.dense.weight_int8"].dtype == np.int8
