"""Retrieval-augmented generation: collections, ingestion, indexes, hybrid retrieval, packing, access control."""
