"""A collection's indexes behind the `RagIndex` protocol: embedded (exact NumPy, HNSW) and Milvus, with BM25."""
