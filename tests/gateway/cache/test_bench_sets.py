"""The quality benchmark's pair sets: the sealed second held-out set is known by name, held out (never swept
or tuned on), and skipped with a note where its file is absent."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]


def _pairs_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cachebench_pairs", ROOT / "bench/cachebench/pairs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_holdout2_is_a_held_out_set(tmp_path: Path) -> None:
    pairs = _pairs_module()
    assert "holdout2" in pairs.SET_FILES and "cache_pairs_holdout2" in pairs.HELD_OUT
    row = {"a": "How do I reset my password?", "b": "How can I reset my password?", "same": True, "class": "synonym"}
    (tmp_path / "cache_pairs_holdout2.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    [chosen], missing = pairs.select(["holdout2"], tmp_path)
    assert chosen.name == "cache_pairs_holdout2" and chosen.held_out and missing == []
    assert chosen.pairs[0].same and chosen.pairs[0].cached == row["a"]


def test_a_missing_set_is_skipped_with_a_note(tmp_path: Path) -> None:
    chosen, missing = _pairs_module().select(["holdout2"], tmp_path)
    assert chosen == [] and missing and "holdout2" in missing[0]
