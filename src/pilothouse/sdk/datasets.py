"""The dataset methods of the `Pilothouse` client (a mixin).

ph = Pilothouse()
ph.push_dataset("support-qa", [{"input": {"question": "Reset my password?"}, "expected": "Use the link ..."}])
ph.push_dataset("support-qa", "qa.jsonl")                       # or a .jsonl / .csv file
ph.add_dataset_items_from_traces("support-qa", prompt="support-answer", score="groundedness<0.5", limit=50)
ph.split_dataset("support-qa", {"train": 0.8, "test": 0.2}, seed=7)
for item in ph.dataset_items("support-qa", split="test"):
    print(item["id"], item["input"])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

PAGE = 1000


class DatasetsMixin:
    if TYPE_CHECKING:

        def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def push_dataset(
        self,
        name: str,
        items: Sequence[Mapping[str, Any]] | str | Path,
        *,
        mode: str = "replace",
        message: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Store items (or a .jsonl/.csv file's) as the dataset's next version; `mode="append"` adds them to the
        latest version's. Returns the dataset with `latest` and `created` (false: nothing changed)."""
        from pilothouse.datasets.files import load_file  # here: `import pilothouse` stays light

        rows = load_file(Path(items)) if isinstance(items, (str, Path)) else [dict(i) for i in items]
        body = {"name": name, "items": rows, "mode": mode, "message": message, "description": description}
        result: dict[str, Any] = self.request("POST", "/api/evals/datasets", json=body)
        return result

    def list_datasets(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/evals/datasets")
        return result

    def get_dataset(self, name: str, *, version: int | None = None) -> dict[str, Any]:
        params = {"version": version} if version else {}
        result: dict[str, Any] = self.request("GET", f"/api/evals/datasets/{name}", params=params)
        return result

    def dataset_versions(self, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", f"/api/evals/datasets/{name}/versions")
        return result

    def dataset_items(
        self, name: str, *, version: int | None = None, split: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a version (default: the latest), in order, fetched a page at a time. The version is
        pinned by the first page, so a push in between does not mix versions."""
        offset: int | None = 0
        while offset is not None:
            params: dict[str, Any] = {"offset": offset, "limit": PAGE}
            if version:
                params["version"] = version
            if split:
                params["split"] = split
            page = self.request("GET", f"/api/evals/datasets/{name}/items", params=params)
            version = page["version"]
            yield from page["data"]
            offset = page["next_offset"]

    def add_dataset_items_from_traces(self, name: str, **filters: Any) -> dict[str, Any]:
        """Items from the newest traces matching `filters` (the trace list's: since, model, prompt, tag, score,
        q, ... plus `limit`, `split`, `message`) added as a new version; `skipped` counts traces left out."""
        body = {k: v for k, v in filters.items() if v is not None}
        result: dict[str, Any] = self.request("POST", f"/api/evals/datasets/{name}/from-traces", json=body)
        return result

    def split_dataset(
        self, name: str, fractions: Mapping[str, float], *, seed: int = 0, message: str | None = None
    ) -> dict[str, Any]:
        body = {"fractions": dict(fractions), "seed": seed, "message": message}
        result: dict[str, Any] = self.request("POST", f"/api/evals/datasets/{name}/splits", json=body)
        return result
