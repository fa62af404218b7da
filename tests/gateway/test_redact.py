"""Credentials are removed from upstream error text; the rest of the upstream's reason stays readable."""

from __future__ import annotations

import time

import pytest

from pilothouse.config import Deployment
from pilothouse.gateway.providers.base import ProviderError
from pilothouse.gateway.providers.errors import error_from_event, error_from_response
from pilothouse.gateway.providers.redact import REDACTED, redact, remember_deployment, remember_secret
from pilothouse.gateway.routing.upstream_errors import provider_error_to_api


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer sk-upstream-0123456789abcdef", "sk-upstream-0123456789abcdef"),
        ("headers: {'authorization': 'bearer abcdef0123456789'}", "abcdef0123456789"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ('{"x-api-key": "0f1e2d3c4b5a69788796a5b4"}', "0f1e2d3c4b5a69788796a5b4"),
        ("api-key: 3f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c", "3f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c"),
        ("Incorrect API key provided: abc123-not-shaped-like-anything.", "abc123-not-shaped-like-anything"),
        ("invalid x-api-key sk-ant-api03-AbCdEf0123456789_xyz", "sk-ant-api03-AbCdEf0123456789_xyz"),
        ("project key sk-proj-AbCdEf0123456789 rejected", "sk-proj-AbCdEf0123456789"),
        ("aws AKIAIOSFODNN7EXAMPLE denied", "AKIAIOSFODNN7EXAMPLE"),
        ("key=AIzaSyA-0123456789abcdefghijklmnopqrstu invalid", "AIzaSyA-0123456789abcdefghijklmnopqrstu"),
        ("GET https://api.example.com/v1?key=s3cr3tvalue&alt=json", "s3cr3tvalue"),
        ("proxy at https://user:hunter2pass@proxy.local:8080 refused", "hunter2pass"),
        ("token ghp_0123456789abcdefghijklmnopqrstuvwxyz", "ghp_0123456789abcdefghijklmnopqrstuvwxyz"),
        ("hf token hf_abcdefghijklmnopqrstuvwxyz0123456789", "hf_abcdefghijklmnopqrstuvwxyz0123456789"),
        ("bad jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijk", "eyJhbGciOiJIUzI1NiJ9"),
    ],
)
def test_credential_shapes_are_redacted(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert REDACTED in out


@pytest.mark.parametrize(
    "text",
    [
        "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
        "Basic validation failed: 'messages' must be a list",
        "max_tokens must be at most 4096; the token count was 5000",
        "model 'gpt-4o' does not exist or you do not have access to it",
    ],
)
def test_ordinary_error_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_configured_values_are_redacted_exactly_wherever_they_appear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PH_TEST_REDACT_KEY", "plainvalue-with-no-known-shape-42")
    deployment = Deployment(
        provider="openai",
        model="m",
        api_key_env="PH_TEST_REDACT_KEY",
        options={"headers": {"X-Custom-Auth": "Token opaque-header-credential-9", "X-Trace": "not-secret-123"}},
    )
    remember_deployment(deployment)
    out = redact("echo: plainvalue-with-no-known-shape-42 / opaque-header-credential-9 / not-secret-123")
    assert out == f"echo: {REDACTED} / {REDACTED} / not-secret-123"


def test_short_values_are_not_treated_as_secrets() -> None:
    remember_secret("abc")
    assert redact("abc abcdef") == "abc abcdef"


def test_provider_errors_are_redacted_where_they_are_made() -> None:
    body = b'{"error": {"message": "bad request; you sent Authorization: Bearer sk-live-0123456789abcdef"}}'
    error = error_from_response("openai", 400, {}, body)
    assert "sk-live" not in error.message and "Bearer [REDACTED]" in error.message
    streamed = error_from_event("anthropic", {"type": "api_error", "message": "x-api-key: sk-ant-0123456789abcdef"})
    assert "sk-ant" not in streamed.message


def test_provider_errors_from_any_provider_are_redacted_on_the_way_to_the_caller() -> None:
    """A plugin provider raising its own ProviderError with a key in it: the API error is clean."""
    remember_secret("plugin-upstream-secret-777")
    exc = ProviderError("upstream", "failed with key plugin-upstream-secret-777 and Bearer tok_abcdef123456")
    error = provider_error_to_api(exc, "plugin/m")
    assert "plugin-upstream-secret-777" not in error.message
    assert "tok_abcdef123456" not in error.message
    assert error.message.startswith("upstream plugin/m: failed with key [REDACTED]")


@pytest.mark.parametrize(
    "text",
    ["a." * 32_000, "a-" * 32_000, "-api" * 16_000, "eyJ" * 21_000, "Bearer " * 9_000, "http://" + "a" * 64_000],
)
def test_redaction_stays_linear_on_adversarial_text(text: str) -> None:
    """Error bodies come from the upstream: 64 KiB crafted to make a regex backtrack must not stall the loop."""
    started = time.perf_counter()
    redact(text)
    assert time.perf_counter() - started < 1.0
