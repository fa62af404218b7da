"""The examples of README.md and docs/*.md, run as tests (see test_doc_examples.py)."""
