"""A client that walks away, an upstream that never finishes, and client retries on top of the gateway's:
`pilothouse up` in front of tests/support/flaky_upstream.py.

* A client that disconnects while its (non-streamed, or not yet started) call is awaited cancels the
  upstream call at once: the upstream sees its connection closed, no retry starts, the trace is stored.
* The call deadline bounds an upstream that trickles a byte a second under a 2 s read timeout, and one that
  sends only SSE keep-alives: 504 `deadline_exceeded` at the deadline.
* The official `openai` client with its default retries (2) sends one request when the gateway already
  retried (`x-should-retry: false`): the upstream sees exactly the gateway's attempts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest
from openai import OpenAI

from tests.e2e import AdminApi, assert_clean_log
from tests.support.flaky_upstream import FlakyUpstream
from tests.support.servers import RunningServer, start_server

pytestmark = pytest.mark.slow

GATEWAY_RETRIES = 2  # so a call that is not cancelled would be retried
READ_TIMEOUT_S = 2
DEADLINE_S = 3


def _model(name: str, base_url: str, extra: str = "") -> str:
    return (
        f'[[models]]\nname = "{name}"\n{extra}'
        f'[[models.deployments]]\nprovider = "openai"\nmodel = "up-{name}"\nbase_url = "{base_url}"\n'
        f"timeout_s = {READ_TIMEOUT_S}\ninput_price_per_mtok = 1\noutput_price_per_mtok = 2\n"
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[FlakyUpstream]:
    flaky = FlakyUpstream("flaky", hang_s=30.0)
    flaky.start()
    try:
        yield flaky
    finally:
        flaky.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: FlakyUpstream) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("gateway-deadline")
    config = root / "pilothouse.toml"
    config.write_text(
        "include_default_models = false\n"
        f"[routing]\nretries = {GATEWAY_RETRIES}\nbackoff_base_s = 0.05\nbackoff_max_s = 0.1\nbreaker_failures = 0\n"
        + _model("walkaway", upstream.base_url)
        + _model("bounded", upstream.base_url, f"call_deadline_s = {DEADLINE_S}\n")
    )
    server = start_server(root / "data", config=config)
    try:
        yield server
    finally:
        server.stop()
    assert_clean_log(server)


@pytest.fixture
def flaky(upstream: FlakyUpstream) -> Iterator[FlakyUpstream]:
    upstream.reset()
    upstream.calls = 0
    upstream.hung_up_after.clear()
    yield upstream
    upstream.reset()


@pytest.fixture
def admin(gateway: RunningServer, admin_for: Callable[[RunningServer], AdminApi]) -> AdminApi:
    return admin_for(gateway)


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    until = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > until:
            return False
        time.sleep(0.02)
    return True


def _session_trace(admin: AdminApi, session: str) -> dict[str, object]:
    found: list[dict[str, object]] = []

    def stored() -> bool:
        found[:] = admin.traces(session=session)["data"]
        return bool(found)

    assert _wait_for(stored, 5.0), f"no trace stored for session {session}"
    return admin.trace(str(found[0]["id"]))


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream-before-first-chunk"])
def test_client_that_disconnects_cancels_the_upstream_call(
    gateway: RunningServer, flaky: FlakyUpstream, admin: AdminApi, stream: bool
) -> None:
    flaky.always = "hang"
    session = f"walkaway-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {gateway.admin_key}", "x-pilothouse-session-id": session}
    body = {"model": "walkaway", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):  # the client gives up after 1 s and closes its connection
        httpx.post(f"{gateway.base_url}/chat/completions", json=body, headers=headers, timeout=1.0)
    assert _wait_for(lambda: bool(flaky.hung_up_after), 3.0), "the upstream call went on after the client left"
    assert flaky.hung_up_after[0] < 1.7  # closed within ~1 s of the client leaving, not at the read timeout (2 s)
    # Uncancelled, the read timeout (2 s) would fail the call and the gateway would retry it.
    time.sleep(max(0.0, started + READ_TIMEOUT_S + 1.5 - time.monotonic()))
    assert flaky.calls == 1, f"{flaky.calls} upstream calls for a client that left"
    trace = _session_trace(admin, session)
    assert trace["status"] == "error"
    spans = trace["spans"]
    assert isinstance(spans, list)
    llm = [s for s in spans if s["kind"] == "llm"]
    assert len(llm) == 1
    attrs = llm[0]["attributes"]
    assert attrs["pilothouse.client_disconnected"] is True
    assert attrs["pilothouse.upstream.cancelled"] == "cancelled"
    assert attrs["pilothouse.upstream.usage_unknown"] is True  # settled at its reservation, not at zero


def test_trickling_upstream_is_cut_at_the_deadline(gateway: RunningServer, flaky: FlakyUpstream) -> None:
    flaky.always = "trickle"  # a byte a second: the 2 s read timeout never fires
    client = OpenAI(base_url=gateway.base_url, api_key=gateway.admin_key, timeout=60.0)  # default retries
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="bounded", messages=[{"role": "user", "content": "hi"}])
    elapsed = time.monotonic() - started
    client.close()
    assert caught.value.status_code == 504
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "deadline_exceeded"
    assert DEADLINE_S - 0.2 < elapsed < DEADLINE_S + 2.0
    assert flaky.calls == 1  # neither the gateway nor the client tried again
    assert _wait_for(lambda: bool(flaky.hung_up_after), 2.0)
    assert flaky.hung_up_after[0] < DEADLINE_S + 1.0


def test_keepalive_only_stream_ends_at_the_deadline(gateway: RunningServer, flaky: FlakyUpstream) -> None:
    flaky.always = "keepalive"
    client = OpenAI(base_url=gateway.base_url, api_key=gateway.admin_key, timeout=60.0)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="bounded", messages=[{"role": "user", "content": "hi"}], stream=True)
    elapsed = time.monotonic() - started
    client.close()
    assert caught.value.status_code == 504
    assert DEADLINE_S - 0.2 < elapsed < DEADLINE_S + 2.0
    assert flaky.calls == 1
    assert _wait_for(lambda: bool(flaky.hung_up_after), 2.0)


def test_openai_client_retries_do_not_multiply_the_gateways_attempts(
    gateway: RunningServer, flaky: FlakyUpstream
) -> None:
    flaky.always = "500"
    client = OpenAI(base_url=gateway.base_url, api_key=gateway.admin_key, timeout=30.0)  # max_retries=2
    assert client.max_retries == 2
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="walkaway", messages=[{"role": "user", "content": "hi"}])
    client.close()
    assert caught.value.status_code == 502
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert flaky.calls == 1 + GATEWAY_RETRIES  # the gateway's attempts, and no more
