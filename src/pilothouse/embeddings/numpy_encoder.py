"""The BERT encoder of all-MiniLM-L6-v2 in pure NumPy: the reference implementation and the fallback.

Token ids in, unit-length sentence vectors out: BERT (GELU in its erf form), mean pooling over the
attention mask and L2 normalisation, as in the model's `modules.json`. `onnx_graph.py` builds the same
arithmetic as an ONNX graph; the tests hold the two to each other and to sentence-transformers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pilothouse.embeddings.types import BertConfig, FloatArray, IntArray

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

    def __init__(self, weights: Mapping[str, FloatArray], prefix: str) -> None:
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


class NumpyEncoder:
    """Thread-safe: the weights are read-only and each call works on its own arrays."""

    name = "numpy"

    def __init__(self, weights: Mapping[str, FloatArray], config: BertConfig) -> None:
        self.config = config

        def t(name: str) -> FloatArray:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        self._word = t("embeddings.word_embeddings.weight")
        self._pos = t("embeddings.position_embeddings.weight")
        self._type0 = t("embeddings.token_type_embeddings.weight")[0].copy()
        self._emb_ln_w = t("embeddings.LayerNorm.weight")
        self._emb_ln_b = t("embeddings.LayerNorm.bias")
        self._layers = [_Layer(weights, f"encoder.layer.{i}.") for i in range(config.num_layers)]

    def encode(self, input_ids: IntArray, mask: IntArray | None) -> FloatArray:
        """(batch, seq) token ids, right-padded where `mask` is 0 (None: no padding) -> (batch, hidden)."""
        cfg = self.config
        bsz, seq = input_ids.shape
        hidden = self._word[input_ids] + self._pos[:seq][None, :, :] + self._type0
        hidden = _layer_norm(hidden, self._emb_ln_w, self._emb_ln_b, cfg.eps)

        fmask = None if mask is None else mask.astype(np.float32)
        # Additive mask as in transformers: the smallest float32 where padding is.
        additive = None
        if fmask is not None:
            additive = ((np.float32(1.0) - fmask) * np.finfo(np.float32).min)[:, None, None, :]
        heads, hd, width = cfg.num_heads, cfg.head_dim, cfg.hidden_size
        scale = np.float32(1.0 / np.sqrt(hd))
        for layer in self._layers:
            flat = hidden.reshape(bsz * seq, width)
            qkv = flat @ layer.w_qkv + layer.b_qkv
            qkv = qkv.reshape(bsz, seq, 3, heads, hd).transpose(2, 0, 3, 1, 4)  # (3, B, H, L, D)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q * scale) @ k.transpose(0, 1, 3, 2)
            if additive is not None:
                scores += additive
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(bsz * seq, width)
            attn = context @ layer.w_o + layer.b_o
            h1 = _layer_norm(attn + flat, layer.ln1_w, layer.ln1_b, cfg.eps)
            inter: FloatArray = h1 @ layer.w_in
            inter += layer.b_in
            _gelu_(inter)
            h2 = _layer_norm(inter @ layer.w_out + layer.b_out + h1, layer.ln2_w, layer.ln2_b, cfg.eps)
            hidden = h2.reshape(bsz, seq, width)

        if fmask is None:
            pooled = hidden.mean(axis=1)
        else:
            summed = (hidden * fmask[:, :, None]).sum(axis=1)
            pooled = summed / np.clip(fmask.sum(axis=1, keepdims=True), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: FloatArray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)
        return result
