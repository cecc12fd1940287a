"""Kombu's Redis transport, hardened: a malformed message is set aside instead of killing the worker,
and messages a worker held when the connection broke are put back once the broker answers again.

Kombu 5.7 restores a channel's unacknowledged messages when the connection breaks, reading them from
Redis through a connection object Celery has already torn down: `AttributeError: 'NoneType' object has
no attribute 'hostname'` kills the worker. Here they are restored from the copy the channel holds in
memory (which also survives a Redis restart without persistence), and when Redis cannot be reached they
wait in this process and go back on their queues from the next connection.
"""

from __future__ import annotations

import binascii
import logging
import os
import threading
from queue import Empty
from typing import Any

from kombu.exceptions import ContentDisallowed
from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Message
from kombu.transport.virtual import base as virtual_base
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps

from automation.broker.deadletter import set_aside
from automation.broker.envelope import MalformedMessage, check_envelope, decode_envelope

logger = logging.getLogger("automation.broker")

#: Messages held when a connection broke and Redis could not take them back:
#: (delivery tag, payload, exchange, routing key).
_held: list[tuple[str, dict[str, Any], str, str]] = []
_held_lock = threading.Lock()
# A pool process forked during an outage must not push its parent's held messages a second time.
os.register_at_fork(after_in_child=_held.clear)


class CheckedMessage(Message):
    """A message built from its envelope, or MalformedMessage saying what is wrong with the envelope.

    Built once per delivery, before it is recorded as unacknowledged or handed to Celery: an exception
    of this type can only mean the envelope itself is unusable.
    """

    def __init__(self, payload: Any, channel: Any = None, **kwargs: Any) -> None:
        check_envelope(payload)
        try:
            super().__init__(payload, channel=channel, **kwargs)
        except (binascii.Error, UnicodeError) as exc:
            raise MalformedMessage(f"body is not valid base64: {exc}") from None
        except (KeyError, TypeError, ValueError, ContentDisallowed) as exc:
            raise MalformedMessage(f"unusable envelope: {exc!r}") from None


class QoS(kombu_redis.QoS):
    def ack(self, delivery_tag: str) -> None:
        try:
            super().ack(delivery_tag)
        except Exception as exc:  # noqa: BLE001 - never end the worker over an acknowledgement
            self._forget(delivery_tag, exc)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue=requeue)
        except Exception as exc:  # noqa: BLE001 - never end the worker over a rejection
            self._forget(delivery_tag, exc)

    def _forget(self, delivery_tag: str, exc: BaseException) -> None:
        """The message came from a connection that broke meanwhile (its channel is closed, or Redis is down):
        it was, or will be, put back on its queue, and the step guard makes its next delivery harmless."""
        logger.info("ack of message %s not recorded (%r): it will be delivered again", delivery_tag, exc)
        virtual_base.QoS.ack(self, delivery_tag)

    def restore_unacked(self, client: Any = None) -> None:
        """Put every message delivered to this channel and not acknowledged back at the head of its queue."""
        self._flush()
        held = list(self._delivered.items())
        self._delivered.clear()
        if not held:
            return
        try:
            with self.channel.conn_or_acquire(client) as conn:
                for tag, message in held:
                    self._restore_from_memory(conn, tag, message)
        except Exception as exc:  # noqa: BLE001 - a broken connection, or a transport already torn down
            with _held_lock:
                _held.extend(
                    (tag, m._raw, m.delivery_info.get("exchange", ""), m.delivery_info.get("routing_key", ""))
                    for tag, m in held
                )
            logger.warning(
                "broker unreachable (%r): %d unacknowledged message(s) kept to restore on reconnect",
                exc,
                len(held),
            )

    def _restore_from_memory(self, client: Any, tag: str, message: Any) -> None:
        info = message.delivery_info
        with client.pipeline() as pipe:
            pipe.multi()
            self.channel.push_back(
                pipe, tag, message._raw, info.get("exchange", ""), info.get("routing_key", "")
            )
            pipe.execute()


class Channel(kombu_redis.Channel):
    QoS = QoS
    Message = CheckedMessage

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._clients: dict[bool, tuple[Any, Any]] = {}
        super().__init__(*args, **kwargs)
        self._restore_held()

    def _create_client(self, asynchronous: bool = False) -> Any:
        """One client object per connection pool, reused. Kombu builds a new `redis.Redis` for every
        command it sends (publishing a message, its task-sent event, each acknowledgement: several per
        task), and the constructor copies ~170 response callbacks each time. A client holds no connection
        of its own (every command checks one out of the pool), so sharing it is safe; a new pool (after
        a reconnection) gets a new client."""
        pool = self.async_pool if asynchronous else self.pool
        cached = self._clients.get(asynchronous)
        if cached is not None and cached[0] is pool:
            return cached[1]
        client = super()._create_client(asynchronous)  # type: ignore[misc]
        self._clients[asynchronous] = (pool, client)
        return client

    def push_back(
        self, pipe: Any, tag: str, payload: dict[str, Any], exchange: str, routing_key: str
    ) -> None:
        """Queue `payload` again at the head (the consuming end) of the queues `exchange`/`routing_key`
        lead to, and drop its copy from the unacknowledged set (in one transaction with `pipe`)."""
        pipe.zrem(self.unacked_index_key, tag).hdel(self.unacked_key, tag)
        try:
            payload["headers"]["redelivered"] = True
            payload["properties"]["delivery_info"]["redelivered"] = True
        except (KeyError, TypeError):
            pass
        try:
            queues = self._lookup(exchange, routing_key, default=routing_key) if exchange else [routing_key]
        except Exception:  # noqa: BLE001 - bindings lost with the broker's data: the routing key names the queue
            queues = [routing_key]
        for queue in queues or [routing_key]:
            pri = self._get_message_priority(payload, reverse=False)
            pipe.rpush(self._q_for_pri(queue, pri), dumps(payload))

    def _restore_held(self) -> None:
        with _held_lock:
            pending = list(_held)
            _held.clear()
        if not pending:
            return
        try:
            with self.conn_or_acquire() as client, client.pipeline() as pipe:
                for tag, payload, exchange, routing_key in pending:
                    self.push_back(pipe, tag, payload, exchange, routing_key)
                pipe.execute()
        except Exception as exc:  # noqa: BLE001 - still unreachable: keep them for the next channel
            with _held_lock:
                _held[:0] = pending
            logger.warning("could not restore %d held message(s) yet: %r", len(pending), exc)
            return
        logger.warning("restored %d message(s) held since the broker connection broke", len(pending))

    def _brpop_read(self, **options: Any) -> bool:
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            self._deliver_checked(item, dest)
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        with self.conn_or_acquire() as client:
            for pri in self.priority_steps:
                item = client.rpop(self._q_for_pri(queue, pri))
                if item:
                    self._maybe_update_queues_expire(client, queue)
                    try:
                        payload = decode_envelope(item)
                        CheckedMessage(payload, channel=self)
                        return payload
                    except MalformedMessage as exc:
                        reason = f"malformed envelope: {exc}"
                        set_aside(queue=queue, payload=item, reason=reason, redis_client=client)
                        raise Empty() from None
            self._maybe_update_queues_expire(client, queue)
            raise Empty()

    def _deliver_checked(self, item: Any, queue: str) -> None:
        payload: dict[str, Any] = {}
        try:
            payload = decode_envelope(item)
            self.connection._deliver(payload, queue)
        except MalformedMessage as exc:
            reason = f"malformed envelope: {exc}"
            set_aside(queue=queue, payload=item, reason=reason, redis_client=self.client)
        except self.connection_errors:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever else a message raises on its way in
            reason = f"could not be handed to the worker: {exc!r}"
            set_aside(queue=queue, payload=item, reason=reason, redis_client=self.client)
            tag = (payload.get("properties") or {}).get("delivery_tag")
            if isinstance(tag, str):
                self.qos.ack(tag)  # never delivered again from the unacknowledged set


class Transport(kombu_redis.Transport):
    Channel = Channel
