# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology's projections as Jinja filters: thin wrappers over module_utils/topology.py."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.celerystack.platform.plugins.module_utils import topology as core

DOCUMENTATION = """
name: celery_services
author: Celerystack engineers (@celerystack)
version_added: 0.2.0
short_description: The service catalogue of a host, from the topology
description:
  - One entry per Celery service a host runs, as systemd names it, C({kind, unit, pidfile, ...}).
    Workers (C(kind=worker)) are one per queue that has a worker (Celery queues unless their
    C(worker.enabled) is false; raw event queues only when they have a C(worker) mapping) and
    carry C(queue), C(celery_queue), C(raw_queue) and C(logfile); with O(defaults) also the
    resolved C(settings), the C(celery worker) C(options) and C(stop_timeout).
  - Beat (C(kind=beat)) and Flower (C(kind=flower)) are added when asked for.
  - Fails naming the field path when the topology or the defaults are invalid.
options:
  _input:
    description: The topology (C(celerystack_topology)).
    type: dict
    required: true
  defaults:
    description: Worker settings for queues that do not set them (C(celery_worker_defaults)).
    type: dict
  only:
    description: This host's queues (all when empty).
    type: list
    elements: str
    default: []
  workers:
    description: Include the worker services.
    type: bool
    default: true
  beat:
    description: Include beat.
    type: bool
    default: false
  flower:
    description: Include Flower.
    type: bool
    default: false
"""

EXAMPLES = """
- name: Show the services this host runs
  ansible.builtin.debug:
    msg: "{{ celerystack_topology | celerystack.platform.celery_services(celery_worker_defaults) }}"
"""

RETURN = """
_value:
  description: C({kind, unit, pidfile, ...}) per service.
  type: list
  elements: dict
"""


def _projection(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except core.TopologyInvalid as err:
        raise AnsibleFilterError("\n".join(err.errors)) from err


def celery_services(topology, defaults=None, only=None, workers=True, beat=False, flower=False):
    return _projection(core.services, topology, defaults, only, workers, beat, flower)


def topology_errors(
    topology,
    defaults=None,
    name="celerystack_topology",
    defaults_name="celery_worker_defaults",
    celery=True,
):
    return core.errors(topology, defaults, name, defaults_name, celery)


def topology_application(topology):
    return _projection(core.application, topology)


def topology_broker(topology):
    return _projection(core.broker, topology)


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self):
        return {
            "celery_services": celery_services,
            "topology_errors": topology_errors,
            "topology_application": topology_application,
            "topology_broker": topology_broker,
        }
