"""Scenario tests of a prompt version: cases and assertions from NAME.tests.yaml, run against a model.

`scenarios` parses the cases, `assertions` checks an answer, `runner` runs a suite through an `Executor`
(`http_executor` over HTTP for the CLI, `prompts/testing/gateway_executor.py` in the server), `comparison` compares
two versions' results (the promotion gate) and `junit` writes a report for CI.
"""
