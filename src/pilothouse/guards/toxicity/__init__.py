"""Toxicity: a learned classifier over sentence embeddings plus a small lexicon (`scanner.ToxicityScanner`)."""
