"""The Governance pages (admin and above): policies with shadow-mode results, keys (create, revoke), budgets
with spend and forecast, rate limits, and the audit log with the chain's verification (owner keys).

Data is set up through the API with the admin key, pages are read as signed-in sessions, and every action is
taken as the pages' forms take it: the JSON API with the session cookie and its CSRF token."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from pilothouse.ui.pages.governance_access import forecast
from tests.support.asgi_app import ADMIN_KEY

if TYPE_CHECKING:
    from tests.ui.conftest import Dashboard

PAGES = (
    "/governance",
    "/governance/policies",
    "/governance/policies/shadow-secrets",
    "/governance/keys",
    "/governance/budgets",
    "/governance/audit",
)
SHADOW_POLICY = """name: shadow-secrets
description: Would refuse credentials in prompts; watched before it is enforced.
mode: shadow
scope:
  routes: [chat]
input:
  - {scanner: secrets, action: block}
"""
AWS_KEY = "AKIA" + "Q7W3E5R7T9Y2U4I6"


def table(html: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}".*?</table>', html, re.S)
    assert match, f"no table {table_id}"
    return match.group(0)


def chat(dash: Dashboard, text: str) -> None:
    body = {"model": "fake-chat", "max_tokens": 50, "messages": [{"role": "user", "content": text}]}
    r = dash.admin_api.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("role", ["viewer", "developer"])
def test_below_admin_gets_the_403_page(dash: Dashboard, role: str) -> None:
    session = dash.session(role)
    for path in PAGES:
        r = session.client.get(path)
        assert r.status_code == 403, (path, r.status_code)
        assert "text/html" in r.headers["content-type"] and "Not allowed" in r.text
        assert "this page needs the &#39;admin&#39; role" in r.text
    nav = session.client.get("/flows").text
    assert 'href="/governance"' not in nav  # the section is not offered either


def test_policies_and_what_shadow_mode_would_have_blocked(dash: Dashboard) -> None:
    pushed = dash.admin_api.post("/api/policies", json={"content": SHADOW_POLICY})
    assert pushed.status_code == 200, pushed.text
    chat(dash, f"my key is {AWS_KEY}, please store it")
    chat(dash, "nothing secret here")
    chat(dash, f"again: {AWS_KEY}")
    admin = dash.session("admin")

    page = admin.client.get("/governance/policies")
    assert page.status_code == 200, page.text
    policies = table(page.text, "policies-table")
    assert "shadow-secrets" in policies and "badge-shadow" in policies
    shadow = table(page.text, "shadow-table")
    row = re.search(r"<tr>\s*<td><a href=\"/governance/policies/shadow-secrets\">.*?</tr>", shadow, re.S)
    assert row, shadow
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
    assert cells[3:7] == ["secrets", "input", "block", "2"], cells
    assert "AWS" in cells[7].upper()
    examples = re.findall(r'href="/traces/([0-9a-f]+)"', cells[9])
    assert len(examples) == 2
    api = dash.admin_api.get("/api/policies/shadow-secrets/shadow", params={"since": "1h"}).json()
    assert api["hits"] == 2 and sorted(api["rules"][0]["example_traces"]) == sorted(examples)
    assert api["traces_scanned"] == 3 and api["capped"] is False

    detail = admin.client.get("/governance/policies/shadow-secrets")
    assert detail.status_code == 200 and 'id="versions-table"' in detail.text and 'id="disable-form"' in detail.text
    assert "Would refuse credentials" in detail.text
    missing = admin.client.get("/governance/policies/no-such-policy")
    assert missing.status_code == 404 and "no policy named" in missing.text
    bad = admin.client.get("/governance/policies", params={"range": "yesterday-ish"})
    assert bad.status_code == 400 and "text/html" in bad.headers["content-type"]
    assert dash.admin_api.get("/api/policies/no-such-policy/shadow").status_code == 404

    disabled = admin.api("POST", "/api/policies/shadow-secrets/disable")
    assert disabled.status_code == 200, disabled.text
    assert "badge-disabled" in table(admin.client.get("/governance/policies").text, "policies-table")


def test_create_and_revoke_a_key(dash: Dashboard) -> None:
    admin = dash.session("admin")
    page = admin.client.get("/governance/keys")
    assert page.status_code == 200
    assert 'id="key-create-form"' in page.text and 'data-api="/api/keys"' in page.text
    assert '<option value="owner"' not in page.text  # an admin cannot create an owner key
    assert f'id="revoke-{admin.key_id}"' not in page.text  # nor revoke its own

    refused = admin.client.post("/api/keys", json={"name": "ci", "role": "service"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    created = admin.api("POST", "/api/keys", json={"name": "ci-runner", "role": "service"})
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["secret"].startswith(key["prefix"])
    keys = admin.client.get("/governance/keys").text
    row = re.search(r"<tr>\s*<td>ci-runner</td>.*?</tr>", table(keys, "keys-table"), re.S)
    assert row and "badge-active" in row.group(0) and f'id="revoke-{key["id"]}"' in row.group(0)
    assert key["secret"] not in keys  # shown once, in the create response only

    revoked = admin.api("DELETE", f"/api/keys/{key['id']}")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    row = re.search(r"<tr>\s*<td>ci-runner</td>.*?</tr>", admin.client.get("/governance/keys").text, re.S)
    assert row and "badge-revoked" in row.group(0) and "revoke-" not in row.group(0)
    assert dash.admin_api.get("/v1/models", headers={"authorization": f"Bearer {key['secret']}"}).status_code == 401


def test_budgets_show_spend_and_forecast_and_limits(dash: Dashboard) -> None:
    project = dash.admin_api.get("/api/keys").json()["data"][0]["project_id"]
    r = dash.admin_api.post(
        "/api/budgets", json={"scope": "project", "subject": project, "usd": "5", "period": "month"}
    )
    assert r.status_code == 200, r.text
    r = dash.admin_api.post("/api/limits", json={"scope": "model", "subject": "fake-chat", "rpm": 1234})
    assert r.status_code == 200, r.text
    chat(dash, "spend a little")
    status = dash.admin_api.get("/api/budgets").json()["data"][0]
    assert Decimal(status["spent_usd"]) > 0

    admin = dash.session("admin")
    html = admin.client.get("/governance/budgets").text
    budgets = table(html, "budgets-table")
    assert "month" in budgets and "$5.00" in budgets and "badge-ok" in budgets
    cells = re.findall(r"<td[^>]*>(.*?)</td>", budgets, re.S)
    assert cells[7].startswith("$") and "%" in cells[7], cells  # the forecast to the month's end
    assert "1,234" in table(html, "limits-table")
    overview = admin.client.get("/governance").text
    assert all(f'href="{p}"' in overview for p in PAGES if p.count("/") == 2 and "shadow" not in p)


def test_forecast_extrapolates_the_spend_rate_to_the_period_end() -> None:
    row = {"spent_usd": "2.5", "limit_usd": "10", "period_start": 1000.0, "resets_at": 5000.0}
    got = forecast(row, now=2000.0)  # a quarter of the period gone, a quarter of the limit spent
    assert got["forecast_usd"] == Decimal("10.000000") and got["forecast_share"] == 1.0
    assert got["spent_share"] == 0.25
    assert forecast({**row, "resets_at": None}, now=2000.0)["forecast_usd"] is None  # a total budget never ends


def test_audit_log_and_its_verification(dash: Dashboard) -> None:
    admin = dash.session("admin")
    admin.api("POST", "/api/keys", json={"name": "audited", "role": "viewer"})
    page = admin.client.get("/governance/audit")
    assert page.status_code == 200
    events = table(page.text, "audit-table")
    assert "dashboard.request" in events and "key.create" in events
    assert 'id="audit-verify"' in page.text and "needs an owner key" in page.text

    only = table(admin.client.get("/governance/audit", params={"action": "key.create"}).text, "audit-table")
    actions = set(re.findall(r'href="/governance/audit\?action=([\w.]+)"', only))
    assert actions == {"key.create"}
    by_actor = table(admin.client.get("/governance/audit", params={"actor": admin.key_id}).text, "audit-table")
    assert set(re.findall(r'href="/governance/audit\?actor=(\w+)"', by_actor)) == {admin.key_id}
    bad = admin.client.get("/governance/audit", params={"after": "-3"})
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]

    assert dash.admin_api.post("/api/audit/checkpoints").status_code == 201
    owner = dash.sign_in(ADMIN_KEY)
    verified = owner.client.get("/governance/audit").text
    section = verified.split('id="audit-verify"')[1].split("</section>")[0]
    assert "badge-verified" in section and "every link intact" in section
    assert 'id="checkpoints-table"' in section
