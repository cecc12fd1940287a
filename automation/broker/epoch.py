"""The broker's epoch: a random key written once into the broker's Redis and remembered in PostgreSQL.

When the key is gone or different, Redis lost its data (a restart without persistence, a failover to an
empty replica, a flush): every queued message went with it, and the active runs must be sent again.
"""

from __future__ import annotations

import logging
import uuid
from functools import lru_cache
from typing import Any

logger = logging.getLogger("automation.broker")

EPOCH_KEY = "automation:broker:epoch"


@lru_cache(maxsize=1)
def _broker_client() -> Any:
    import redis
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def broker_lost_its_data() -> bool:
    """True once per loss: the first pass that finds a new epoch records it and answers True."""
    from django.db import transaction

    from automation.models import BrokerEpoch

    client = _broker_client()
    if client is None:
        return False
    candidate = uuid.uuid4().hex
    client.set(EPOCH_KEY, candidate, nx=True)
    current = client.get(EPOCH_KEY)
    epoch = current.decode() if isinstance(current, bytes) else str(current)
    with transaction.atomic():
        stored = BrokerEpoch.objects.select_for_update().filter(pk=1).first()
        if stored is None:
            BrokerEpoch.objects.get_or_create(pk=1, defaults={"epoch": epoch})
            return False
        if stored.epoch == epoch:
            return False
        stored.epoch = epoch
        stored.save(update_fields=["epoch", "seen_at"])
    logger.warning("broker epoch changed: the broker lost its data")
    return True
