"""Raw events (as Logstash publishes them) turned into store_mail_data tasks.

A worker started with `--raw-queue logstash` runs EventConsumerStep: it consumes the raw queue
next to its Celery queues, parses each message, sends one `store_mail_data` task, and only then
acknowledges the event. A malformed event is published to the queue's dead-letter exchange with
the reason in a header and then acknowledged: never lost, never redelivered in a loop.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from celery import bootsteps
from django.conf import settings
from kombu import Consumer, Exchange, Queue

from celerystack_app import topology

log = logging.getLogger(__name__)

REASON_HEADER = "x-celerystack-reason"
MAX_ID = 64


class MalformedEvent(ValueError):
    """The event cannot become a task; the message says why."""


def parse_event(body: bytes | str) -> dict:
    """The task's arguments from a raw JSON event, or MalformedEvent naming what is wrong."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise MalformedEvent(f"body is not UTF-8: {err}") from err
    try:
        event = json.loads(body)
    except ValueError as err:
        raise MalformedEvent(f"body is not JSON: {err}") from err
    if not isinstance(event, dict):
        raise MalformedEvent(f"event is a JSON {type(event).__name__}, not an object")
    event_id = event.get("id")
    if not isinstance(event_id, str | int) or isinstance(event_id, bool) or str(event_id) == "":
        raise MalformedEvent("event has no 'id'")
    event_id = str(event_id)
    if len(event_id) > MAX_ID:
        raise MalformedEvent(f"event id is longer than {MAX_ID} characters")
    logged_at = event.get("@timestamp")
    if logged_at is not None:
        try:
            datetime.fromisoformat(str(logged_at).replace("Z", "+00:00"))
        except ValueError as err:
            raise MalformedEvent(f"'@timestamp' is not an ISO 8601 time: {logged_at!r}") from err
    return {
        "event_id": event_id,
        "sender": str(event.get("from", ""))[:254],
        "recipient": str(event.get("to", ""))[:254],
        "subject": str(event.get("subject", ""))[:998],
        "logged_at": logged_at,
        "payload": event,
    }


def handle_event(message, send, dead_letter) -> str:
    """Turn one raw message into a task; returns 'sent' or 'dead-lettered'.

    `send(kwargs)` queues the task (with publisher confirms); `dead_letter(message, reason)`
    republishes the message. The event is acknowledged only after either succeeded.
    """
    try:
        arguments = parse_event(message.body)
    except MalformedEvent as err:
        log.warning("dead-lettering a malformed event: %s", err)
        dead_letter(message, str(err))
        message.ack()
        return "dead-lettered"
    send(arguments)
    message.ack()
    return "sent"


class EventConsumerStep(bootsteps.ConsumerStep):
    """Consumes the worker's --raw-queue, if it was given one."""

    def __init__(self, parent, raw_queue=None, **kwargs):
        self.raw_queue = raw_queue
        super().__init__(parent, **kwargs)

    def get_consumers(self, channel):
        if not self.raw_queue or topology.broker(settings.TOPOLOGY) != "rabbitmq":
            return []  # on a redis broker the raw queue is a list: event_lists.py drains it
        spec = topology.raw_queue(settings.TOPOLOGY, self.raw_queue)
        self.dead_letter_exchange = spec["dead_letter_exchange"]
        self.channel = channel
        queue = Queue(self.raw_queue, no_declare=True)  # the broker's topology declares it
        return [
            Consumer(
                channel,
                queues=[queue],
                on_message=self.on_message,
                prefetch_count=spec["prefetch"],
            )
        ]

    def on_message(self, message):
        from celerystack_app.mail.tasks import store_mail_data

        handle_event(
            message,
            send=lambda kwargs: store_mail_data.apply_async(kwargs=kwargs),
            dead_letter=self.dead_letter,
        )

    def dead_letter(self, message, reason):
        if not self.dead_letter_exchange:
            # No dead-letter exchange declared: reject; the broker drops it, so say so loudly.
            log.error(
                "malformed event dropped (queue %s has no x-dead-letter-exchange)", self.raw_queue
            )
            return
        producer = self.channel.connection.client.Producer(self.channel)
        headers = dict(message.headers or {}, **{REASON_HEADER: reason})
        producer.publish(
            message.body,
            exchange=Exchange(self.dead_letter_exchange, no_declare=True),
            routing_key=message.delivery_info.get("routing_key", ""),
            headers=headers,
            content_type=message.content_type or "application/octet-stream",
            content_encoding=message.content_encoding or "binary",
            serializer=None,
            retry=True,
        )
