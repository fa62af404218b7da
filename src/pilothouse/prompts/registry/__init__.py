"""The prompt registry: prompt files and templates, numbered versions, labels, and resolving a reference.

`files` parses prompt files (`safe_yaml`, `templates` and its `sandbox` check them), `push` stores them as
content-hashed versions, `lookup` finds a version by number, label or hash, `labels` moves and protects
labels (`splits` picks a version from a canary split), `resolver` turns `model: "prompt:NAME@REF"` into a chat
body for the gateway; `export`, `preview`, `diff` and `folder_state` serve pull, render, diff and the CLI's
local folder. Nothing here calls a model.
"""
