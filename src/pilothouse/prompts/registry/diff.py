"""What changed between two prompt versions: a unified diff per message (or of the text), and the changes
to the model configuration, the variables schema and the description."""

from __future__ import annotations

import difflib
from typing import Any


def _unified(old: str, new: str, old_name: str, new_name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name, lineterm="\n"
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _changes(old: dict[str, Any], new: dict[str, Any], key_name: str) -> list[dict[str, Any]]:
    out = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key) or (key in old) != (key in new):
            out.append({key_name: key, "from": old.get(key), "to": new.get(key)})
    return out


def _message_label(msg: dict[str, Any] | None) -> str:
    return "(none)" if msg is None else str(msg.get("role"))


def diff_templates(old: dict[str, Any], new: dict[str, Any], old_name: str, new_name: str) -> dict[str, Any]:
    """{identical, type, messages: [{index, status, from_role, to_role, diff}], text, config, variables,
    description}. `old_name`/`new_name` label the two sides (e.g. support-answer@1)."""
    result: dict[str, Any] = {"from": old_name, "to": new_name}
    result["type"] = None if old.get("type") == new.get("type") else {"from": old.get("type"), "to": new.get("type")}
    messages: list[dict[str, Any]] = []
    old_msgs: list[dict[str, Any]] = old.get("messages") or []
    new_msgs: list[dict[str, Any]] = new.get("messages") or []
    for i in range(max(len(old_msgs), len(new_msgs))):
        a = old_msgs[i] if i < len(old_msgs) else None
        b = new_msgs[i] if i < len(new_msgs) else None
        if a == b:
            continue
        status = "added" if a is None else "removed" if b is None else "changed"
        text = _unified(
            "" if a is None else str(a.get("content", "")),
            "" if b is None else str(b.get("content", "")),
            f"{old_name} messages[{i}] ({_message_label(a)})",
            f"{new_name} messages[{i}] ({_message_label(b)})",
        )
        messages.append(
            {
                "index": i,
                "status": status,
                "from_role": None if a is None else a.get("role"),
                "to_role": None if b is None else b.get("role"),
                "diff": text,
            }
        )
    result["messages"] = messages
    old_text, new_text = old.get("text"), new.get("text")
    result["text"] = (
        None
        if old_text == new_text
        else _unified(str(old_text or ""), str(new_text or ""), f"{old_name} text", f"{new_name} text")
    )
    result["config"] = _changes(old.get("config") or {}, new.get("config") or {}, "key")
    result["variables"] = _changes(old.get("variables") or {}, new.get("variables") or {}, "name")
    old_desc, new_desc = old.get("description"), new.get("description")
    result["description"] = None if old_desc == new_desc else {"from": old_desc, "to": new_desc}
    result["identical"] = not (
        result["type"] or messages or result["text"] or result["config"] or result["variables"] or result["description"]
    )
    return result
