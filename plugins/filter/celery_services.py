# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology's projections as Jinja filters: thin wrappers over module_utils/topology.py."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.celerystack.platform.plugins.module_utils import topology as core


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


def topology_application(topology, defaults=None):
    return _projection(core.application, topology, defaults)


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
