"""Bypass rules: per request (headers), per key (settings), and sampled requests."""

from __future__ import annotations

import pytest

from pilothouse.config import CacheSettings
from pilothouse.errors import InvalidRequest
from pilothouse.gateway.cache.policy import Decision, decide, parse_directives

SETTINGS = CacheSettings(enabled=True, ttl_s=3600, bypass_key_ids=["key_nocache"])


def decision(
    cache_control: str | None = None,
    header: str | None = None,
    ttl: str | None = None,
    *,
    key_id: str = "key_1",
    sampled: bool = False,
    settings: CacheSettings = SETTINGS,
) -> Decision:
    return decide(settings, parse_directives(cache_control, header, ttl), key_id=key_id, sampled=sampled)


def test_default_reads_and_writes() -> None:
    d = decision()
    assert (d.read, d.write, d.ttl_s, d.semantic, d.reason) == (True, True, 3600, False, None)


def test_no_cache_skips_the_read_but_stores() -> None:
    for d in (decision("no-cache"), decision(header="no-cache"), decision("max-age=0, no-cache")):
        assert (d.read, d.write) == (False, True)


def test_no_store_skips_both() -> None:
    for d in (decision("no-store"), decision(header="no-store"), decision("no-cache", "no-store")):
        assert (d.read, d.write, d.reason) == (False, False, "no-store")


def test_sampled_requests_are_cached_only_when_asked() -> None:
    assert decision(sampled=True).reason == "sampled"
    assert decision(header="force", sampled=True).read is True
    assert decision(sampled=True, settings=SETTINGS.model_copy(update={"cache_sampled": True})).read is True


def test_keys_listed_in_settings_bypass() -> None:
    d = decision(header="force", key_id="key_nocache")
    assert (d.read, d.write, d.reason) == (False, False, "key")


def test_ttl_header_can_only_lower_the_ttl() -> None:
    assert decision(ttl="60").ttl_s == 60
    assert decision(ttl="99999").ttl_s == 3600


def test_semantic_per_request() -> None:
    assert decision(header="semantic").semantic is True
    on = SETTINGS.model_copy(update={"semantic": SETTINGS.semantic.model_copy(update={"enabled": True})})
    assert decision(settings=on).semantic is True
    assert decision(header="no-semantic, force", settings=on).semantic is False


@pytest.mark.parametrize(
    ("header", "ttl", "message"),
    [("sometimes", None, "unknown x-pilothouse-cache value 'sometimes'"), (None, "-5", "positive number")],
)
def test_malformed_headers_are_refused(header: str | None, ttl: str | None, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_directives(None, header, ttl)
