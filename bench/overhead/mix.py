"""A wrk script that mixes cache hits and misses: a share of the requests are new (a counter in the message
text, so each one misses the cache, goes upstream and is stored), the others are all the same request (a
hit once it is cached). The same script drives every target, so each gateway gets the same mix.

Each wrk thread reads its own random nonce from /dev/urandom, so the new requests differ between threads
and between wrk runs (a warm-up does not pre-fill the measured run's misses).
"""

from __future__ import annotations

import json
from pathlib import Path

from .common import chat_body

_MARK = "@@N@@"

MIX_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"

local same_body = [==[{same}]==]
local head = [==[{head}]==]
local tail = [==[{tail}]==]
local new_share = {new_share}

local nonce
do
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(8) or (tostring(os.time()) .. tostring(os.clock()))
  if f then f:close() end
  nonce = bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end)
end

local n = 0
local credit = 0.0
request = function()
  credit = credit + new_share
  if credit >= 1.0 then
    credit = credit - 1.0
    n = n + 1
    return wrk.format(nil, nil, nil, head .. nonce .. "-" .. n .. tail)
  end
  return wrk.format(nil, nil, nil, same_body)
end
"""


def mix_bodies() -> tuple[str, str, str]:
    """(the repeated body, what comes before and after the counter in a new one), as compact JSON."""
    same = chat_body()
    new = chat_body()
    new["messages"][0]["content"] += f" (request {_MARK})"
    text = json.dumps(new, separators=(",", ":"))
    head, tail = text.split(_MARK)
    return json.dumps(same, separators=(",", ":")), head, tail


def write_mix_lua(directory: Path, name: str, key: str, new_share: float) -> Path:
    """The script that makes wrk send `new_share` (0..1) new requests and otherwise the repeated one."""
    if not 0.0 <= new_share <= 1.0:
        raise ValueError(f"new_share must be within 0..1, not {new_share}")
    same, head, tail = mix_bodies()
    script = MIX_LUA.format(key=key, same=same, head=head, tail=tail, new_share=repr(float(new_share)))
    path = directory / f"mix-{name}-{round(new_share * 100)}.lua"
    path.write_text(script, encoding="utf-8")
    return path
