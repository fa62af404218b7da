"""The Lua scripts of `RedisLimitStore`. Each runs atomically inside Redis, so one call is one round trip
and every replica sees the same state. Times come from Redis (`TIME`), never from the replicas' clocks.

Key layout (the caller passes every key in KEYS, so the scripts name no key themselves):

* a window is a sorted set of `"<reservation>:<amount>"` members scored by their time (ms) plus a string
  key holding the sum of its amounts; entries older than the window are trimmed (and subtracted from the
  sum) before each check, so a check costs O(log n + expired), not O(n).
* a counter is a hash {spent, reserved, r:<reservation> = amount, seeded, alerted} plus a sorted set of its
  reservations scored by their deadline; reservations past their deadline are released before each check.
  `seeded` marks a counter whose past spend needs no recount from the traces: it was seeded, or a request
  reserved on it. ACQUIRE refuses to create a budget counter (`needs_seed`) without it, so a counter that
  Redis lost (restart without persistence, FLUSHALL, eviction) is re-seeded from the store, never restarted
  from zero. `x:<reservation>` marks a settle that reached a counter before its seed (the call ended while
  the counter was missing): SEED does not restore that reservation as in flight, then drops the marks.
"""

from __future__ import annotations

_COMMON = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function amount_of(member)
  return tonumber(string.match(member, ':(%d+)$'))
end

local function expire(h, rz, exp_at, idle)
  if exp_at > 0 then
    redis.call('PEXPIREAT', h, exp_at)
    redis.call('PEXPIREAT', rz, exp_at)
  elseif idle > 0 then
    redis.call('PEXPIRE', h, idle)
    redis.call('PEXPIRE', rz, idle)
  end
end
"""

# KEYS: per window (zset, sum), then per counter (hash, reservations zset).
# ARGV: nw, nc, reservation, hold_ms; per window: limit, amount, window_ms;
#       per counter: limit (-1: none), amount, expire_at_ms (0: none), idle_ttl_ms (0: none), needs_seed (1/0).
# Returns {0} when admitted (or admitted before: a retried call adds nothing), else {kind (1 window,
# 2 counter, 3 counter not seeded), index (0-based), used, reserved, retry_ms} (retry_ms -1: never).
ACQUIRE = (
    _COMMON
    + """
local nw, nc, rid, hold = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
if nw > 0 then
  if redis.call('ZSCORE', KEYS[1], rid .. ':' .. ARGV[6]) then return {0} end
elseif nc > 0 then
  if redis.call('HEXISTS', KEYS[1], 'r:' .. rid) == 1 then return {0} end
end
local a = 5
for i = 0, nw - 1 do
  local z, tk = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local limit, amount, win = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local cutoff = now - win
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
  if #old > 0 then
    local freed = 0
    for _, m in ipairs(old) do freed = freed + amount_of(m) end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff)
    redis.call('DECRBY', tk, string.format('%d', freed))
  end
  local total = tonumber(redis.call('GET', tk) or '0')
  if total + amount > limit then
    if amount > limit then return {1, i, total, 0, -1} end
    local need = total + amount - limit
    local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
    local got = 0
    for j = 1, #entries, 2 do
      got = got + amount_of(entries[j])
      if got >= need then return {1, i, total, 0, tonumber(entries[j + 1]) + win - now} end
    end
    return {1, i, total, 0, win}
  end
  a = a + 3
end
for k = 0, nc - 1 do
  local h, rz = KEYS[2 * nw + 2 * k + 1], KEYS[2 * nw + 2 * k + 2]
  local limit = tonumber(ARGV[a])
  local dead = redis.call('ZRANGEBYSCORE', rz, '-inf', now)
  if #dead > 0 then
    for _, r in ipairs(dead) do
      local amt = redis.call('HGET', h, 'r:' .. r)
      if amt then
        if amt ~= '0' then redis.call('HINCRBY', h, 'reserved', '-' .. amt) end
        redis.call('HDEL', h, 'r:' .. r)
      end
    end
    redis.call('ZREMRANGEBYSCORE', rz, '-inf', now)
  end
  if ARGV[a + 4] == '1' and redis.call('HEXISTS', h, 'seeded') == 0 then
    local v = redis.call('HMGET', h, 'spent', 'reserved')
    return {3, k, v[1] or '0', v[2] or '0', 0}
  end
  if limit >= 0 then
    local v = redis.call('HMGET', h, 'spent', 'reserved')
    local spent, reserved = v[1] or '0', v[2] or '0'
    if tonumber(spent) + tonumber(reserved) >= limit then return {2, k, spent, reserved, 0} end
  end
  a = a + 5
end
a = 5
for i = 0, nw - 1 do
  local z, tk = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local amount, win = ARGV[a + 1], tonumber(ARGV[a + 2])
  redis.call('ZADD', z, now, rid .. ':' .. amount)
  redis.call('INCRBY', tk, amount)
  redis.call('PEXPIRE', z, win + 1000)
  redis.call('PEXPIRE', tk, win + 1000)
  a = a + 3
end
for k = 0, nc - 1 do
  local h, rz = KEYS[2 * nw + 2 * k + 1], KEYS[2 * nw + 2 * k + 2]
  local amount = ARGV[a + 1]
  redis.call('HINCRBY', h, 'reserved', amount)
  redis.call('HSET', h, 'r:' .. rid, amount, 'seeded', '1')
  redis.call('ZADD', rz, now + hold, rid)
  expire(h, rz, tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]))
  a = a + 5
end
return {0}
"""
)

# KEYS: as ACQUIRE, then (with counters) the reservation's settled marker. ARGV: nw, nc, reservation; per window:
#       reserved, actual; per counter: actual, alert_above (-1: none), expire_at_ms, idle_ttl_ms; then (with
#       counters) the marker's time to live in ms. Settling a reservation twice adds its counters once.
# Returns the 0-based indices of the counters that crossed alert_above for the first time.
SETTLE = (
    _COMMON
    + """
local nw, nc, rid = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local a = 4
if nc > 0 and not redis.call('SET', KEYS[#KEYS], '1', 'NX', 'PX', ARGV[#ARGV]) then
  return {}  -- settled already: a retry whose first try ran but lost its reply adds nothing
end
for i = 0, nw - 1 do
  local z, tk = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local old, new = ARGV[a], ARGV[a + 1]
  if old ~= new then
    local member = rid .. ':' .. old
    local score = redis.call('ZSCORE', z, member)
    if score then
      redis.call('ZREM', z, member)
      redis.call('ZADD', z, score, rid .. ':' .. new)
      redis.call('INCRBY', tk, string.format('%d', tonumber(new) - tonumber(old)))
    end
  end
  a = a + 2
end
local alerted = {}
for k = 0, nc - 1 do
  local h, rz = KEYS[2 * nw + 2 * k + 1], KEYS[2 * nw + 2 * k + 2]
  local actual, above = ARGV[a], tonumber(ARGV[a + 1])
  local amt = redis.call('HGET', h, 'r:' .. rid)
  if amt then
    if amt ~= '0' then redis.call('HINCRBY', h, 'reserved', '-' .. amt) end
    redis.call('HDEL', h, 'r:' .. rid)
    redis.call('ZREM', rz, rid)
  end
  if redis.call('HEXISTS', h, 'seeded') == 0 then redis.call('HSET', h, 'x:' .. rid, '1') end
  local spent = redis.call('HINCRBY', h, 'spent', actual)
  expire(h, rz, tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]))
  if above >= 0 and spent > above and redis.call('HSETNX', h, 'alerted', '1') == 1 then
    alerted[#alerted + 1] = k
  end
  a = a + 4
end
return alerted
"""
)

# KEYS: hash, reservations zset. ARGV: amount, expire_at_ms (0: none), force (1: add even if seeded), then per
# hold to restore (only on the first seed): reservation, amount, deadline_ms.
# Returns 1 when the amount was added, 0 when the counter was seeded already.
SEED = """
local h, rz = KEYS[1], KEYS[2]
local fresh = redis.call('HSETNX', h, 'seeded', '1') == 1
if not fresh and ARGV[3] ~= '1' then return 0 end
if ARGV[1] ~= '0' then redis.call('HINCRBY', h, 'spent', ARGV[1]) end
if fresh then
  for i = 4, #ARGV, 3 do
    local rid, amount = ARGV[i], ARGV[i + 1]
    if redis.call('HEXISTS', h, 'r:' .. rid) == 0 and redis.call('HEXISTS', h, 'x:' .. rid) == 0 then
      redis.call('HSET', h, 'r:' .. rid, amount)
      redis.call('HINCRBY', h, 'reserved', amount)
      redis.call('ZADD', rz, ARGV[i + 2], rid)
    end
  end
  for _, f in ipairs(redis.call('HKEYS', h)) do
    if string.sub(f, 1, 2) == 'x:' then redis.call('HDEL', h, f) end
  end
end
local exp = tonumber(ARGV[2])
if exp > 0 then
  redis.call('PEXPIREAT', h, exp)
  if redis.call('EXISTS', rz) == 1 then redis.call('PEXPIREAT', rz, exp) end
end
return 1
"""
