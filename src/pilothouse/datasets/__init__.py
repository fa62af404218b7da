"""Evaluation datasets: validated items (`items`), files in and out (`files`: JSONL and CSV), deterministic
splits (`splits`), and items made from production traces (`from_traces`). Storage and versioning live in
`pilothouse.store.datasets`; docs/datasets.md shows the whole flow."""
