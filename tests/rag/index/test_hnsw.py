"""The HNSW graph beyond the conformance suite: its file is reused on reopening, and loading it never makes a
later onnxruntime import crash the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from pilothouse.rag.index.hnsw import GRAPH_FILE, HnswGraph
from pilothouse.rag.index.table import ChunkTable
from pilothouse.rag.types import IndexedChunk


def table_of(n: int, dim: int = 8) -> ChunkTable:
    rng = np.random.default_rng(1)
    table = ChunkTable(dim)
    table.upsert([IndexedChunk(f"c{i}", f"text {i}", rng.standard_normal(dim), {"_acl": ["*"]}) for i in range(n)])
    return table


def test_a_saved_graph_is_loaded_not_rebuilt_and_a_stale_one_is_refused(tmp_path: Path) -> None:
    table = table_of(50)
    graph = HnswGraph(8)
    graph.fill(table)
    graph.save(tmp_path)
    assert (tmp_path / GRAPH_FILE).exists()
    again = HnswGraph(8)
    assert again.load(tmp_path, table) and len(again) == 50
    query = table.vectors[3]
    assert again.search(table, query, 1, table.allowed(None))[0].id == "c3"
    table.remove(["c1"])  # the table moved on: the file is out of step
    assert not HnswGraph(8).load(tmp_path, table)
    assert not HnswGraph(8).load(tmp_path / "missing", table)
    (tmp_path / GRAPH_FILE).write_bytes(b"garbage")
    assert not HnswGraph(8).load(tmp_path, table_of(50))


def test_onnxruntime_after_an_hnsw_index_does_not_crash() -> None:
    """usearch imported before onnxruntime crashes the interpreter; the graph imports them in the safe order."""
    script = "from pilothouse.rag.index.hnsw import HnswGraph\nHnswGraph(4)\nimport onnxruntime\nprint('alive')\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "alive"), done.stderr[-2000:]
