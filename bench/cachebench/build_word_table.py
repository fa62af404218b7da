"""Rebuild the contrast check's shipped word-vector table (src/pilothouse/gateway/cache/contrast_word_vectors.npz).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/cachebench/build_word_table.py

Embeds every whole word of the MiniLM vocabulary (closed-class words left out) as a one-word sentence with the
bundled model, the same way the check embeds a word at lookup, and stores the vectors as int8 (about 40 s on
2 cores). Deterministic for a given model. See `pilothouse.gateway.cache.contrast_wordtable`.
"""

from __future__ import annotations

from pilothouse.gateway.cache.contrast_wordtable import TABLE_PATH, write


def main() -> None:
    count = write()
    print(f"wrote {count} word vectors to {TABLE_PATH} ({TABLE_PATH.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
