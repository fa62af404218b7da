"""OpenTelemetry in and out: OTLP/HTTP trace ingest (`ingest`, `genai_map`, `ingest_store`) and export of our
traces to any OTLP collector (`export`), both with the GenAI semantic conventions (`gen_ai.*`, v1.41.1)."""
