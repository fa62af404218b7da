"""The budget and rate-limit methods of the `Pilothouse` client (a mixin, so sdk/client.py stays small).

ph = Pilothouse()
ph.set_budget("key", "key_3f9c...", usd=10, period="day")            # hard by default
ph.set_budget("user", "alice", usd="2.50", period="month", mode="soft")
ph.set_limits("key", "key_3f9c...", rpm=60, tpm=20_000, max_tokens=1024)
for b in ph.list_budgets():
    print(b["subject"], b["spent_usd"], "of", b["limit_usd"], "resets", b["resets_at"])
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any


class BudgetsMixin:
    if TYPE_CHECKING:

        def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def set_budget(
        self,
        scope: str,
        subject: str,
        *,
        usd: Decimal | float | int | str,
        period: str = "month",
        mode: str = "hard",
    ) -> dict[str, Any]:
        """Create or change the budget of a key (id), project (id or name), user or prompt (name) for a
        period (day, month, total; UTC calendar). Hard budgets refuse with 429; soft ones alert."""
        body = {"scope": scope, "subject": subject, "usd": str(usd), "period": period, "mode": mode}
        result: dict[str, Any] = self.request("POST", "/api/budgets", json=body)
        return result

    def list_budgets(self, *, project: str | None = None) -> list[dict[str, Any]]:
        """Budgets with `spent_usd`, `reserved_usd` (in flight), `remaining_usd` and `resets_at` (epoch s), of
        the key's project; owner keys may name another `project` or `all`."""
        params = {"project": project} if project else None
        result: list[dict[str, Any]] = self.request("GET", "/api/budgets", params=params)["data"]
        return result

    def delete_budget(self, budget_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("DELETE", f"/api/budgets/{budget_id}")
        return result

    def set_limits(
        self,
        scope: str,
        subject: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        max_tokens: int | None = None,
        clear: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Set the requests/tokens per minute and the max_tokens cap of a key, project or model. The ones
        left None keep their current value; name those to remove in `clear` ("rpm", "tpm", "max_tokens")."""
        body: dict[str, Any] = {"scope": scope, "subject": subject}
        given = {"rpm": rpm, "tpm": tpm, "max_tokens": max_tokens}
        body.update({name: value for name, value in given.items() if value is not None})
        body.update({name: None for name in clear})
        result: dict[str, Any] = self.request("POST", "/api/limits", json=body)
        return result

    def list_limits(self, *, project: str | None = None) -> list[dict[str, Any]]:
        """Rate limits and caps of the key's project; owner keys may name another `project` or `all`."""
        params = {"project": project} if project else None
        result: list[dict[str, Any]] = self.request("GET", "/api/limits", params=params)["data"]
        return result

    def delete_limits(self, limit_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("DELETE", f"/api/limits/{limit_id}")
        return result
