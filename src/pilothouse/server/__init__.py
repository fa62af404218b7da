"""The HTTP server: OpenAI-compatible gateway, management API and health endpoints in one ASGI app."""
