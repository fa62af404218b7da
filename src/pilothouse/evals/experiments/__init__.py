"""Experiments: a dataset version run against variants (prompt versions, models, parameters) through the gateway
in process, scored by metrics, resumable, summarised with intervals and compared with paired tests.

`spec` validates what to run, `calls` turns an item into a gateway call for a variant, `runner` runs and stores
results, `summary` aggregates and compares them. docs/evaluation.md shows the whole flow."""
