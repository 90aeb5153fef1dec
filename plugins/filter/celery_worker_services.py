# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The worker services a topology asks for: one per queue, with its `celery worker` options."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

DOCUMENTATION = """
name: celery_worker_services
author: Celerystack engineers (@celerystack)
version_added: 0.1.0
short_description: One Celery worker service per queue of a topology
description:
  - Each Celery queue of the topology gets a service unless its C(worker) mapping turns
    C(enabled) off; a raw event queue gets one only when it has a C(worker) mapping (its
    worker drains the raw queue with C(--raw-queue) and consumes the private Celery queue
    C(<name>.consumer)).
  - Settings come from the queue's C(worker) mapping over the defaults given.
options:
  _input:
    description: The topology C({vhost, exchanges, queues, bindings, policies}).
    type: dict
    required: true
  defaults:
    description: Worker settings for queues that do not set them.
    type: dict
    required: true
  only:
    description: Serve only these queues (all when empty).
    type: list
    elements: str
    default: []
"""

EXAMPLES = """
- name: Show the services this host runs
  ansible.builtin.debug:
    msg: "{{ celerystack_topology | celerystack.platform.celery_worker_services(defaults) }}"
"""

RETURN = """
_value:
  description: C({queue, unit, celery_queue, raw_queue, settings, options}) per service.
  type: list
  elements: dict
"""

KNOWN = {
    "enabled",
    "concurrency",
    "autoscale",
    "optimization",
    "max_tasks_per_child",
    "prefetch_multiplier",
    "soft_time_limit",
    "time_limit",
    "loglevel",
}


def unit_name(queue):
    return "celery-worker-" + re.sub(r"[^A-Za-z0-9_-]", "-", queue)


def worker_options(settings):
    """The `celery worker` options of one service, in a stable order."""
    options = []
    if settings.get("autoscale"):
        if not re.match(r"^[0-9]+,[0-9]+$", str(settings["autoscale"])):
            raise AnsibleFilterError("autoscale must be 'max,min', not %r" % settings["autoscale"])
        high, low = (int(v) for v in str(settings["autoscale"]).split(","))
        if low > high or high < 1:
            raise AnsibleFilterError("autoscale 'max,min' needs 1 <= min <= max")
        options.append("--autoscale=%s" % settings["autoscale"])
    else:
        options.append("--concurrency=%d" % int(settings["concurrency"]))
    if settings.get("optimization"):
        options.append("-O%s" % settings["optimization"])
    options.append("--max-tasks-per-child=%d" % int(settings["max_tasks_per_child"]))
    options.append("--prefetch-multiplier=%d" % int(settings["prefetch_multiplier"]))
    soft, hard = int(settings["soft_time_limit"]), int(settings["time_limit"])
    if not 0 < soft < hard:
        raise AnsibleFilterError("soft_time_limit must be below time_limit (%d, %d)" % (soft, hard))
    options.append("--soft-time-limit=%d" % soft)
    options.append("--time-limit=%d" % hard)
    options.append("--loglevel=%s" % settings["loglevel"])
    return options


def _served(topology, only=None):
    """(queue, worker settings) of each queue that gets a worker service here."""
    for queue in (topology or {}).get("queues") or []:
        worker = queue.get("worker")
        if queue.get("raw") and worker is None:
            continue
        worker = dict(worker or {})
        unknown = set(worker) - KNOWN
        if unknown:
            raise AnsibleFilterError(
                "queue '%s': unknown worker settings %s" % (queue["name"], sorted(unknown))
            )
        if not worker.get("enabled", True):
            continue
        if only and queue["name"] not in only:
            continue
        yield queue, worker


def celery_worker_units(topology, only=None):
    """The worker unit names alone (for the roles that watch the workers, such as monit)."""
    return [unit_name(queue["name"]) for queue, _worker in _served(topology, only)]


def celery_worker_services(topology, defaults, only=None):
    services = []
    for queue, worker in _served(topology, only):
        settings = dict(defaults, **worker)
        settings.pop("enabled", None)
        try:
            options = worker_options(settings)
        except AnsibleFilterError as err:
            raise AnsibleFilterError("queue '%s': %s" % (queue["name"], err)) from err
        raw = bool(queue.get("raw"))
        services.append(
            {
                "queue": queue["name"],
                "unit": unit_name(queue["name"]),
                "celery_queue": queue["name"] + ".consumer" if raw else queue["name"],
                "raw_queue": queue["name"] if raw else None,
                "settings": settings,
                "options": options,
            }
        )
    return services


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self):
        return {
            "celery_worker_services": celery_worker_services,
            "celery_worker_units": celery_worker_units,
        }
