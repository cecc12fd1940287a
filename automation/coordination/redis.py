"""Redis coordination: one Lua script takes a semaphore slot atomically.

Slots are a sorted set scored by expiry (Redis server time), so a worker killed mid-action frees its
slot when the action's time limit runs out instead of leaking it. The limit is a Redis key that
`apply_config` sets at once; when Redis lost it (a restart without persistence), the caller's copy from
the stored config puts it back. After such a restart the slot set starts empty too: for at most one
time limit, actions already running are not counted.
"""

from __future__ import annotations

import redis

from automation.coordination.base import Coordinator

SLOTS_KEY = "automation:actions:running"
LIMIT_KEY = "automation:actions:limit"

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(redis.call('GET', KEYS[2]))
if not limit then
  limit = tonumber(ARGV[3])
  redis.call('SET', KEYS[2], limit)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""


class RedisCoordinator(Coordinator):
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self._take = self.client.register_script(_TAKE)

    def take_slot(self, token: str, *, ttl_seconds: float, limit: int) -> bool:
        args: list[str | int] = [token, int(ttl_seconds * 1000), int(limit)]
        return bool(int(self._take(keys=[SLOTS_KEY, LIMIT_KEY], args=args)))

    def set_limit(self, limit: int) -> None:
        self.client.set(LIMIT_KEY, int(limit))

    def give_back(self, token: str) -> None:
        self.client.zrem(SLOTS_KEY, token)

    def running_actions(self) -> int:
        seconds, micros = self.client.time()
        self.client.zremrangebyscore(SLOTS_KEY, "-inf", int(seconds) * 1000 + int(micros) // 1000)
        return int(self.client.zcard(SLOTS_KEY))

    def close(self) -> None:
        self.client.close()
