"""Frozen copy of the contrast check before issue 11 (commit a41caae), kept only as the side-by-side baseline
in benchmarks; do not edit."""
