"""The cache benchmark's parts (bench/cache_bench.py runs them): corpus, latency, quality, report."""
