"""Traces and spans: the record of every call, and the sinks that persist them."""
