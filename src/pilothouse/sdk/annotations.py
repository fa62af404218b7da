"""The annotation-queue methods of the `Pilothouse` client (a mixin).

ph = Pilothouse()
ph.create_queue("helpfulness", score={"name": "helpful", "data_type": "boolean"})
ph.queue_items("helpfulness", experiment_id=run_id, assignee="ana")
while (task := ph.next_task("helpfulness", assignee="ana"))["task"]:
    print(task["show"]["input"], task["show"]["output"])
    ph.answer_task("helpfulness", task["task"]["id"], value=True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any


class AnnotationsMixin:
    if TYPE_CHECKING:

        def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def create_queue(self, name: str, *, score: Mapping[str, Any], description: str | None = None) -> dict[str, Any]:
        body = {"name": name, "score": dict(score), "description": description}
        result: dict[str, Any] = self.request("POST", "/api/evals/queues", json=body)
        return result

    def list_queues(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/evals/queues")
        return result

    def queue_items(
        self,
        name: str,
        *,
        trace_ids: Sequence[str] = (),
        experiment_id: str | None = None,
        variant: str | None = None,
        assignee: str | None = None,
        limit: int = 1000,
    ) -> dict[str, Any]:
        body = {
            "trace_ids": list(trace_ids),
            "experiment_id": experiment_id,
            "variant": variant,
            "assignee": assignee,
            "limit": limit,
        }
        result: dict[str, Any] = self.request("POST", f"/api/evals/queues/{name}/items", json=body)
        return result

    def next_task(self, name: str, *, assignee: str | None = None) -> dict[str, Any]:
        params = {"assignee": assignee} if assignee else {}
        result: dict[str, Any] = self.request("GET", f"/api/evals/queues/{name}/next", params=params)
        return result

    def answer_task(
        self,
        name: str,
        task_id: str,
        *,
        value: float | bool | None = None,
        category: str | None = None,
        skip: bool = False,
        comment: str | None = None,
    ) -> dict[str, Any]:
        body = {"value": value, "category": category, "skip": skip, "comment": comment}
        result: dict[str, Any] = self.request("POST", f"/api/evals/queues/{name}/tasks/{task_id}", json=body)
        return result
