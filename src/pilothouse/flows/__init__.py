"""Durable workflows: graphs of typed steps over a typed state, checkpointed, resumable, with approvals."""
