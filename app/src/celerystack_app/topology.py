"""Celery queues and routes from the topology the inventory declares (celerystack_topology).

The same document declares the broker (roles/rabbitmq) and one worker service per queue, so a
queue is named once. Queue entries may carry:
  routes:  task names or glob patterns whose tasks go to this queue;
  raw:     true for a queue of raw events (not Celery messages), drained by the event consumer
           of the worker started with `--raw-queue <name>`; that worker's own Celery queue is the
           private, auto-deleted `<name>.consumer` (no task is routed there);
  worker:  the worker service's settings (read by the deployment, not here).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue


def load(path: str | Path) -> dict:
    try:
        topology = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ImproperlyConfigured(f"topology file {path} cannot be read as JSON: {err}") from err
    if not isinstance(topology, dict) or not topology.get("queues"):
        raise ImproperlyConfigured(f"topology file {path} declares no queues")
    return topology


def _binding_of(topology: dict, queue: str) -> dict | None:
    for binding in topology.get("bindings") or []:
        kind = binding.get("destination_type", "queue")
        if kind == "queue" and binding["destination"] == queue:
            return binding
    return None


def celery_queues(topology: dict) -> list[Queue]:
    """kombu queues declared exactly as the broker has them (same exchange, key, arguments)."""
    exchanges = {e["name"]: e for e in topology.get("exchanges") or []}
    queues = []
    for spec in topology["queues"]:
        if spec.get("raw"):
            if spec.get("worker") is not None:
                private = spec["name"] + ".consumer"
                queues.append(
                    Queue(private, Exchange(private), routing_key=private, auto_delete=True)
                )
            continue
        binding = _binding_of(topology, spec["name"])
        exchange = binding["source"] if binding else spec["name"]
        routing_key = binding.get("routing_key", "") if binding else spec["name"]
        arguments = dict(spec.get("arguments") or {})
        arguments.setdefault("x-queue-type", "classic")
        queues.append(
            Queue(
                spec["name"],
                Exchange(exchange, type=exchanges.get(exchange, {}).get("type", "direct")),
                routing_key=routing_key,
                queue_arguments=arguments,
                durable=spec.get("durable", True),
            )
        )
    return queues


def celery_routes(topology: dict) -> dict[str, dict[str, str]]:
    routes = {}
    for spec in topology["queues"]:
        for pattern in spec.get("routes") or []:
            if pattern in routes:
                raise ImproperlyConfigured(
                    f"task route {pattern!r} is declared for queues "
                    f"{routes[pattern]['queue']!r} and {spec['name']!r}"
                )
            routes[pattern] = {"queue": spec["name"]}
    return routes


def raw_queue(topology: dict, name: str) -> dict:
    for spec in topology["queues"]:
        if spec["name"] == name and spec.get("raw"):
            return spec
    raise ImproperlyConfigured(f"queue {name!r} is not a raw event queue of the topology")


def default_queue(topology: dict) -> str:
    name = topology.get("default_queue", "default")
    if name not in [q["name"] for q in topology["queues"]]:
        raise ImproperlyConfigured(f"default queue {name!r} is not declared in the topology")
    return name
