"""Celery queues and routes from the topology projection the deployment writes (TOPOLOGY_FILE).

The deployment derives this document from the inventory's `celerystack_topology` with the same
code that declares the broker and the worker services (the collection's
plugins/module_utils/topology.py, `application()`), so the application never derives a rule of
its own: it reads

  vhost, default_queue; on a redis broker also broker (redis) and visibility_timeout;
  queues:      each Celery queue with its exchange, exchange type, routing key, arguments;
  raw_queues:  each queue of raw events (not Celery messages) with the private Celery queue of
               the worker that drains it (`<name>.consumer`, or null without a worker), its
               dead-letter exchange and the event consumer's prefetch (on a redis broker:
               the list its events arrive on and the list malformed ones go to);
  routes:      task name or glob pattern -> queue, in declaration order.

Worker settings are not in it: tuning a worker changes nothing the application reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

KEYS = ("vhost", "default_queue", "queues", "raw_queues", "routes")


def load(path: str | Path) -> dict:
    try:
        projection = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ImproperlyConfigured(f"topology file {path} cannot be read as JSON: {err}") from err
    if not isinstance(projection, dict) or any(key not in projection for key in KEYS):
        raise ImproperlyConfigured(
            f"topology file {path} is not the application's projection of the topology "
            f"(keys {', '.join(KEYS)}); the celery_app role writes it"
        )
    if not projection["queues"]:
        raise ImproperlyConfigured(f"topology file {path} declares no Celery queue")
    return projection


def celery_queues(projection: dict) -> list[Queue]:
    """kombu queues declared exactly as the broker has them (same exchange, key, arguments)."""
    queues = [
        Queue(
            spec["name"],
            Exchange(spec["exchange"], type=spec["exchange_type"]),
            routing_key=spec["routing_key"],
            queue_arguments=spec["arguments"],
            durable=spec["durable"],
        )
        for spec in projection["queues"]
    ]
    for spec in projection["raw_queues"]:
        private = spec["consumer_queue"]
        if private:
            # Typed like every Celery queue's exchange (topic once the application has a quorum
            # queue: Celery's native delayed delivery skips direct exchanges, with a warning).
            exchange = Exchange(private, type=spec.get("consumer_exchange_type", "direct"))
            queues.append(Queue(private, exchange, routing_key=private, auto_delete=True))
    return queues


def celery_routes(projection: dict) -> dict[str, dict[str, str]]:
    return {route["pattern"]: {"queue": route["queue"]} for route in projection["routes"]}


def raw_queue(projection: dict, name: str) -> dict:
    for spec in projection["raw_queues"]:
        if spec["name"] == name:
            return spec
    raise ImproperlyConfigured(f"queue {name!r} is not a raw event queue of the topology")


def broker(projection: dict) -> str:
    """rabbitmq or redis (a projection written before Redis brokers is RabbitMQ's)."""
    return projection.get("broker") or "rabbitmq"


def check_broker(projection: dict, url: str) -> None:
    """The broker URL is of the kind the topology was derived for (its queues, raw lists)."""
    scheme = url.split("://", 1)[0]
    expected = "redis" if scheme in ("redis", "rediss") else "rabbitmq"
    if broker(projection) != expected:
        raise ImproperlyConfigured(
            f"CELERYSTACK_BROKER_SCHEME is {scheme}, a {expected} broker, but the topology is "
            f"for a {broker(projection)} broker (celerystack_topology.broker)"
        )


def default_queue(projection: dict) -> str:
    return projection["default_queue"]
