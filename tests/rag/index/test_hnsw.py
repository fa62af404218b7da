"""The HNSW graph beyond the conformance suite: its file is reused on reopening, and loading it never makes a
later onnxruntime import crash the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pilothouse.rag.index.exact import exact_search
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


def test_the_graph_is_float16_and_hits_carry_exact_cosines_in_exact_order() -> None:
    """The graph nominates, the table's float32 vectors rank: scores are exact search's, to float32 precision."""
    table = table_of(400, dim=32)
    graph = HnswGraph(32)
    graph.fill(table)
    assert str(graph.graph.dtype).endswith("F16")
    rng = np.random.default_rng(7)
    allowed = table.allowed(None)
    for _ in range(20):
        query = table.query_vector(rng.standard_normal(32))
        found = graph.search(table, query, 10, allowed)
        truth = exact_search(table, query, 10, allowed)
        assert [h.id for h in found] == [h.id for h in truth]
        assert [h.score for h in found] == pytest.approx([h.score for h in truth], abs=1e-6)  # not 1 - distance


def test_a_float32_graph_saved_by_an_older_version_still_loads_and_searches(tmp_path: Path) -> None:
    table = table_of(60)
    older = HnswGraph(8, dtype="f32")
    older.fill(table)
    older.save(tmp_path)
    again = HnswGraph(8)
    assert again.load(tmp_path, table)
    assert str(again.graph.dtype).endswith("F32")
    assert again.search(table, table.vectors[5], 1, table.allowed(None))[0].id == "c5"
