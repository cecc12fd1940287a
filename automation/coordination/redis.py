"""Redis coordination: one Lua script takes the step lease and a semaphore slot atomically.

Slots are a sorted set scored by expiry (Redis server time), so a worker killed mid-action frees its
slot when its lease runs out instead of leaking it.
"""

from __future__ import annotations

import redis

from automation.coordination.base import DEFAULT_ACTION_LIMIT, Acquired, Coordinator, Lease

SLOTS_KEY = "automation:actions:running"
LIMIT_KEY = "automation:actions:limit"

_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local limit = tonumber(redis.call('GET', KEYS[3]) or ARGV[3])
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  if redis.call('ZCARD', KEYS[2]) >= limit then return 0 end
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


class RedisCoordinator(Coordinator):
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._release = self.client.register_script(_RELEASE)

    def acquire(self, lease: Lease, *, ttl_seconds: float) -> Acquired:
        result = self._acquire(
            keys=[lease.key, SLOTS_KEY, LIMIT_KEY],
            args=[lease.token, int(ttl_seconds * 1000), DEFAULT_ACTION_LIMIT],
        )
        return Acquired(int(result))

    def release(self, lease: Lease) -> None:
        self._release(keys=[lease.key, SLOTS_KEY], args=[lease.token])

    def set_action_limit(self, limit: int) -> None:
        self.client.set(LIMIT_KEY, int(limit))

    def running_actions(self) -> int:
        self.client.zremrangebyscore(SLOTS_KEY, "-inf", self._now_ms())
        return int(self.client.zcard(SLOTS_KEY))

    def _now_ms(self) -> int:
        seconds, micros = self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000
