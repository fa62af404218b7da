"""The all-MiniLM-L6-v2 sentence encoder as an ONNX graph, built from its safetensors weights.

No export step, no torch and no `onnx` package: the graph is written node by node (`onnx_proto.py`
serializes it) with the same arithmetic as the NumPy encoder in `numpy_encoder.py`:

    inputs   input_ids (batch, seq) int64, attention_mask (batch, seq) int64 (1 = token, 0 = padding)
    embed    word[ids] + position[0:seq] + token_type[0], LayerNormalization
    layer x6 Q, K, V = x W + b; softmax(Q K^T / sqrt(d) + mask) V per head; output projection;
             residual + LayerNormalization; FFN with exact (erf) GELU; residual + LayerNormalization
    pool     mean over the attention mask, then L2 normalisation
    output   embeddings (batch, hidden) float32, unit length

The node patterns are the ones `transformers` exports, so ONNX Runtime's optimizer fuses what pays on a
CPU (the erf GELU with its bias into BiasGelu, the 1/sqrt(d) scaling into the Q K^T MatMul). Its
hand-fused contrib ops (Attention, SkipLayerNormalization) measured slower for short inputs and are not
used. Weights are external initializers: the serialized graph is ~30 KB and the runtime reads the weight
arrays the caller hands it.

`int8=True` builds the int8 variant (a different model: its vectors differ slightly, see int8_weights.py):
every Linear layer becomes ONNX Runtime's `com.microsoft.DynamicQuantizeMatMul` with int8 weights scaled
per output channel and the bias folded in; activations are quantized per call. Attention products,
softmax, LayerNorm, GELU and pooling stay float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pilothouse.embeddings import onnx_proto as pb
from pilothouse.embeddings.int8_weights import quantize_columns
from pilothouse.embeddings.types import BertConfig, FloatArray

OPSET = 17  # LayerNormalization is a standard op from 17 on
IR_VERSION = 8
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
OUTPUT = "embeddings"
CONTRIB = "com.microsoft"
CONTRIB_OPSET = 1


@dataclass(slots=True)
class MiniLMGraph:
    """The serialized model plus the weights it names as external initializers."""

    model: bytes
    initializers: dict[str, npt.NDArray[Any]] = field(default_factory=dict)


class _Builder:
    def __init__(self, weights: Mapping[str, FloatArray], *, int8: bool) -> None:
        self.source = weights
        self.int8 = int8
        self.nodes: list[bytes] = []
        self.initializers: dict[str, npt.NDArray[Any]] = {}
        self.constants: list[bytes] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def op(
        self, op_type: str, inputs: list[str], output: str = "", domain: str = "", **attributes: pb.AttributeValue
    ) -> str:
        out = output or self._name(op_type.lower())
        self.nodes.append(pb.node(op_type, inputs, [out], name=f"n_{out}", domain=domain, attributes=attributes))
        return out

    def weight(self, name: str, value: FloatArray) -> str:
        self.initializers[name] = np.ascontiguousarray(value, dtype=np.float32)
        return name

    def int8_weight(self, name: str, value: npt.NDArray[np.int8]) -> str:
        self.initializers[name] = np.ascontiguousarray(value, dtype=np.int8)
        return name

    def const(self, value: npt.NDArray[np.generic], hint: str) -> str:
        name = self._name(hint)
        self.constants.append(pb.tensor(name, value))
        return name

    def scalar(self, value: float, hint: str) -> str:
        return self.const(np.array(value, dtype=np.float32), hint)

    def ints(self, values: list[int], hint: str) -> str:
        return self.const(np.array(values, dtype=np.int64), hint)

    def dense(self, x: str, prefix: str) -> str:
        """x W^T + b for the torch Linear `prefix` (stored (out, in); MatMul wants (in, out))."""
        transposed = np.ascontiguousarray(self.source[prefix + ".weight"].T)
        b = self.weight(prefix + ".bias", self.source[prefix + ".bias"])
        if self.int8:
            q, scale = quantize_columns(transposed)
            w = self.int8_weight(prefix + ".weight_int8", q)
            s = self.weight(prefix + ".weight_scale", scale)
            # Inputs: A, B, b_scale (per column), b_zero_point (none: symmetric), bias.
            return self.op("DynamicQuantizeMatMul", [x, w, s, "", b], domain=CONTRIB)
        w = self.weight(prefix + ".weight", transposed)
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        scale = self.weight(prefix + ".weight", self.source[prefix + ".weight"])
        bias = self.weight(prefix + ".bias", self.source[prefix + ".bias"])
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)


def _attention(b: _Builder, x: str, mask_bias: str, prefix: str, config: BertConfig) -> str:
    split = b.ints([0, 0, config.num_heads, config.head_dim], "split_heads")
    merge = b.ints([0, 0, config.hidden_size], "merge_heads")

    def heads(kind: str, perm: list[int]) -> str:
        projected = b.dense(x, f"{prefix}attention.self.{kind}")
        return b.op("Transpose", [b.op("Reshape", [projected, split])], perm=perm)

    q = heads("query", [0, 2, 1, 3])  # (B, H, L, D)
    k = heads("key", [0, 2, 3, 1])  # (B, H, D, L)
    v = heads("value", [0, 2, 1, 3])
    scores = b.op("Div", [b.op("MatMul", [q, k]), b.scalar(float(np.sqrt(config.head_dim)), "sqrt_d")])
    probs = b.op("Softmax", [b.op("Add", [scores, mask_bias])], axis=-1)
    context = b.op("Transpose", [b.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    return b.dense(b.op("Reshape", [context, merge]), f"{prefix}attention.output.dense")


def _gelu(b: _Builder, x: str) -> str:
    """x * 0.5 * (1 + erf(x / sqrt 2)), the pattern ORT fuses into Gelu / BiasGelu."""
    erf = b.op("Erf", [b.op("Div", [x, b.scalar(float(np.sqrt(2.0)), "sqrt2")])])
    one_plus = b.op("Add", [erf, b.scalar(1.0, "one")])
    return b.op("Mul", [b.op("Mul", [x, one_plus]), b.scalar(0.5, "half")])


def _encoder_layer(b: _Builder, x: str, mask_bias: str, index: int, config: BertConfig) -> str:
    p = f"encoder.layer.{index}."
    attn = _attention(b, x, mask_bias, p, config)
    h1 = b.layer_norm(b.op("Add", [attn, x]), p + "attention.output.LayerNorm", config.eps)
    out = b.dense(_gelu(b, b.dense(h1, p + "intermediate.dense")), p + "output.dense")
    return b.layer_norm(b.op("Add", [out, h1]), p + "output.LayerNorm", config.eps)


def build_graph(weights: Mapping[str, FloatArray], config: BertConfig, *, int8: bool = False) -> MiniLMGraph:
    """The sentence encoder for `weights` (the BertModel state dict, names as in model.safetensors);
    `int8`: its Linear layers on int8 weights (the int8 variant, see the module docstring)."""
    b = _Builder(weights, int8=int8)

    # Embeddings: word + position + token type 0 (sentence-transformers passes no token_type_ids).
    word = b.weight("embeddings.word_embeddings.weight", weights["embeddings.word_embeddings.weight"])
    position = b.weight("embeddings.position_embeddings.weight", weights["embeddings.position_embeddings.weight"])
    type0 = b.weight("embeddings.token_type_embeddings.row0", weights["embeddings.token_type_embeddings.weight"][0])
    seq_len = b.op("Shape", [INPUT_IDS], start=1, end=2)
    zero = b.ints([0], "zero")
    positions = b.op("Slice", [position, zero, seq_len, zero])  # rows 0 .. seq-1
    hidden = b.op("Add", [b.op("Add", [b.op("Gather", [word, INPUT_IDS], axis=0), positions]), type0])
    hidden = b.layer_norm(hidden, "embeddings.LayerNorm", config.eps)

    # Additive attention mask as in transformers: 0 on tokens, the smallest float32 on padding.
    mask = b.op("Cast", [ATTENTION_MASK], to=pb.FLOAT)
    extended = b.op("Unsqueeze", [mask, b.ints([1, 2], "axes12")])  # (B, 1, 1, L)
    inverted = b.op("Sub", [b.scalar(1.0, "one"), extended])
    mask_bias = b.op("Mul", [inverted, b.scalar(float(np.finfo(np.float32).min), "fmin")])

    for index in range(config.num_layers):
        hidden = _encoder_layer(b, hidden, mask_bias, index, config)

    # Mean pooling over the tokens, then L2 normalisation (sentence-transformers' Pooling + Normalize).
    token_mask = b.op("Unsqueeze", [mask, b.ints([2], "axis2")])  # (B, L, 1)
    axis1 = b.ints([1], "axis1")
    summed = b.op("ReduceSum", [b.op("Mul", [hidden, token_mask]), axis1], keepdims=0)
    counts = b.op("Max", [b.op("ReduceSum", [token_mask, axis1], keepdims=0), b.scalar(1e-9, "tiny")])
    pooled = b.op("Div", [summed, counts])
    norm = b.op("Max", [b.op("ReduceL2", [pooled], axes=[1], keepdims=1), b.scalar(1e-12, "eps_norm")])
    b.op("Div", [pooled, norm], output=OUTPUT)

    external = [pb.external_tensor(name, a.dtype, a.shape, a.nbytes) for name, a in b.initializers.items()]
    graph = pb.graph(
        "all-MiniLM-L6-v2",
        b.nodes,
        inputs=[
            pb.value_info(INPUT_IDS, pb.INT64, ["batch", "seq"]),
            pb.value_info(ATTENTION_MASK, pb.INT64, ["batch", "seq"]),
        ],
        outputs=[pb.value_info(OUTPUT, pb.FLOAT, ["batch", config.hidden_size])],
        initializers=[*b.constants, *external],
    )
    opsets = {"": OPSET, CONTRIB: CONTRIB_OPSET} if int8 else {"": OPSET}
    model = pb.model(graph, opsets, ir_version=IR_VERSION, producer="pilothouse")
    return MiniLMGraph(model, b.initializers)
