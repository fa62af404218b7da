"""The all-MiniLM-L6-v2 encoder on ONNX Runtime (CPU): the graph from `onnx_graph.py`, one thread per call.

The graph is built in memory from the safetensors weights at load time (nothing is downloaded or written
to disk) and handed to an InferenceSession with all graph optimizations on: it fuses the erf GELU with its
bias (BiasGelu) and the 1/sqrt(d) scaling into the Q K^T product (FusedMatMul), and prepacks the weight
matrices for its GEMM kernels, which are most of the time (~3 ms for an 18-token question on one core).
One intra-op thread: a second one takes about a third off on an idle 2-core host, but there it competes
with the event loop and with concurrent lookups, each of which already runs on its own caller thread.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnxruntime as ort

from pilothouse.embeddings.onnx_graph import ATTENTION_MASK, INPUT_IDS, OUTPUT, build_graph
from pilothouse.embeddings.types import BertConfig, FloatArray, IntArray

_ERROR_ONLY = 3  # ORT log severity: no warnings on stderr


class OnnxEncoder:
    """Thread-safe: InferenceSession.run may be called concurrently."""

    name = "onnxruntime"

    def __init__(
        self, weights: Mapping[str, FloatArray], config: BertConfig, *, threads: int = 1, int8: bool = False
    ) -> None:
        graph = build_graph(weights, config, int8=int8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = _ERROR_ONLY
        names = list(graph.initializers)
        arrays = [graph.initializers[name] for name in names]
        if hasattr(options, "add_external_initializers_from_files_in_memory"):  # onnxruntime >= 1.20
            # Each weight is an in-memory "file" the model's external_data points at: the session copies
            # what it needs while it is created, so the arrays can go once it exists.
            options.add_external_initializers_from_files_in_memory(names, arrays, [a.nbytes for a in arrays])
            self._buffers: object = None
        else:  # the session reads these buffers for as long as it lives
            values = [ort.OrtValue.ortvalue_from_numpy(a) for a in arrays]
            options.add_external_initializers(names, values)
            self._buffers = (arrays, values)
        self._session = ort.InferenceSession(graph.model, options, providers=["CPUExecutionProvider"])
        del graph, arrays
        positions = int(weights["embeddings.position_embeddings.weight"].shape[0])
        self._ones: IntArray = np.ones((1, positions), dtype=np.int64)
        self._ones.setflags(write=False)
        self._outputs = [OUTPUT]

    def encode(self, input_ids: IntArray, mask: IntArray | None) -> FloatArray:
        """(batch, seq) int64 ids, right-padded where `mask` is 0 (None: no padding) -> (batch, hidden)."""
        if mask is None:
            bsz, seq = input_ids.shape
            mask = self._ones[:, :seq] if bsz == 1 else np.ones_like(input_ids)
        result: FloatArray = self._session.run(self._outputs, {INPUT_IDS: input_ids, ATTENTION_MASK: mask})[0]
        return result
