"""Raw events on a redis broker: a list its producer pushes them onto (Logstash's redis output
with data_type list does RPUSH), drained by the worker started with `--raw-queue <name>`.

Redis has no acknowledgements, so the drain keeps its own: each event is moved atomically
(BLMOVE) from the list onto this worker's processing list, turned into a task (or dead-lettered),
and only then removed from it. A worker killed in between finds the event there when it starts
again and handles it again; store_mail_data is idempotent by event id, so nothing is lost and
nothing is stored twice. A malformed event goes onto the raw queue's dead-letter list as a JSON
object with the reason and the event's text.

The worker's consumer runs the drain in a thread of its own (EventListStep), next to the Celery
consumer; a lost connection is retried every second, the processing list first.
"""

from __future__ import annotations

import json
import logging
import threading

from celery import bootsteps
from django.conf import settings

from celerystack_app import topology
from celerystack_app.mail.events import handle_event

log = logging.getLogger(__name__)

# Seconds a BLMOVE waits for an event: how soon the drain notices that the worker stops.
TAKE_TIMEOUT = 1.0


def list_client():
    """A Redis client on the broker, as the broker user (whose ACL covers the event lists)."""
    import redis

    tls = settings.CELERY_BROKER_USE_SSL or {}
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL,
        socket_connect_timeout=5,
        socket_timeout=TAKE_TIMEOUT + 10,
        health_check_interval=30,
        **tls,
    )


class EventList:
    """One raw queue's list, seen by one worker (`node`, its Celery node name)."""

    def __init__(self, client, key: str, node: str, dead_letter_key: str | None = None):
        self.client = client
        self.key = key
        self.processing = f"{key}.processing.{node}"
        self.dead_letter_key = dead_letter_key

    def leftovers(self) -> list[bytes]:
        """Events this worker took and had not finished when it last stopped."""
        return self.client.lrange(self.processing, 0, -1)

    def take(self, timeout: float = TAKE_TIMEOUT) -> bytes | None:
        """The oldest event, moved onto the processing list; None after `timeout` seconds."""
        return self.client.blmove(self.key, self.processing, timeout, "LEFT", "RIGHT")

    def done(self, item: bytes) -> None:
        self.client.lrem(self.processing, 1, item)

    def dead_letter(self, item: bytes, reason: str) -> None:
        if not self.dead_letter_key:
            log.error("malformed event dropped (raw queue %s has no dead_letter)", self.key)
            return
        entry = {"reason": reason, "event": item.decode("utf-8", "replace")}
        self.client.rpush(self.dead_letter_key, json.dumps(entry))


class _Taken:
    """What handle_event needs of a message: its body, and an acknowledgement."""

    def __init__(self, events: EventList, item: bytes):
        self.body = item
        self._events = events

    def ack(self) -> None:
        self._events.done(self.body)


def handle(events: EventList, item: bytes, send) -> str:
    return handle_event(
        _Taken(events, item), send, dead_letter=lambda _message, why: events.dead_letter(item, why)
    )


def drain(events: EventList, send, stopping: threading.Event, pause: float = 1.0) -> None:
    """Until `stopping` is set: this worker's leftovers first, then each new event. Any failure
    (the broker restarting, a task that cannot be sent) leaves the event on the processing list;
    after a pause the leftovers are handled again."""
    recovered = False
    while not stopping.is_set():
        try:
            if not recovered:
                for item in events.leftovers():
                    handle(events, item, send)
                recovered = True
            item = events.take()
            if item is not None:
                handle(events, item, send)
        except Exception as err:
            log.warning("event list %s: %s; retrying in %g s", events.key, err, pause)
            recovered = False
            stopping.wait(pause)


class EventListStep(bootsteps.StartStopStep):
    """On a redis broker, drains the worker's --raw-queue list in a thread of its own."""

    def __init__(self, parent, raw_queue=None, **kwargs):
        self.raw_queue = raw_queue
        self.thread = None
        self.stopping = threading.Event()
        super().__init__(parent, **kwargs)

    def start(self, parent):
        if not self.raw_queue or topology.broker(settings.TOPOLOGY) != "redis":
            return
        from celerystack_app.mail.tasks import store_mail_data

        spec = topology.raw_queue(settings.TOPOLOGY, self.raw_queue)
        events = EventList(list_client(), spec["list"], parent.hostname, spec["dead_letter_list"])
        self.stopping.clear()
        self.thread = threading.Thread(
            target=drain,
            args=(events, lambda kwargs: store_mail_data.apply_async(kwargs=kwargs), self.stopping),
            name=f"event-list-{self.raw_queue}",
            daemon=True,
        )
        self.thread.start()

    def stop(self, parent):
        if self.thread is not None:
            self.stopping.set()
            self.thread.join(TAKE_TIMEOUT + 15)
            self.thread = None

    shutdown = stop
