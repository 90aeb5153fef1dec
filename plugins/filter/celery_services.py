# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology's projections as Jinja filters: thin wrappers over module_utils/topology.py."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.celerystack.platform.plugins.module_utils import applications as apps
from ansible_collections.celerystack.platform.plugins.module_utils import topology as core


def _projection(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except core.TopologyInvalid as err:
        raise AnsibleFilterError("\n".join(err.errors)) from err


def celery_services(
    topology, defaults=None, only=None, workers=True, beat=False, flower=False, prefix="celery"
):
    return _projection(core.services, topology, defaults, only, workers, beat, flower, prefix)


def topology_errors(
    topology,
    defaults=None,
    name="celerystack_topology",
    defaults_name="celery_worker_defaults",
    celery=True,
):
    return core.errors(topology, defaults, name, defaults_name, celery)


def topology_application(topology, defaults=None, key_prefix=""):
    return _projection(core.application, topology, defaults, key_prefix)


def topology_broker(topology):
    return _projection(core.broker, topology)


def application_errors(applications, first=None, name="celerystack_applications"):
    return apps.errors(applications, first, name)


def application_name_error(name):
    return apps.name_error(name) if name else ""


def application_names(name):
    return apps.names(name)


def application_vars(entry):
    return apps.role_vars(entry)


def applications_monitored(applications):
    return apps.monitored(applications)


def application_databases(applications):
    return apps.databases(applications)


def application_redis_users(applications, broker="rabbitmq"):
    return apps.redis_users(applications, broker)


def application_rabbitmq(applications):
    return apps.rabbitmq(applications)


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self):
        return {
            "celery_services": celery_services,
            "topology_errors": topology_errors,
            "topology_application": topology_application,
            "topology_broker": topology_broker,
            "application_errors": application_errors,
            "application_names": application_names,
            "application_name_error": application_name_error,
            "application_vars": application_vars,
            "applications_monitored": applications_monitored,
            "application_databases": application_databases,
            "application_redis_users": application_redis_users,
            "application_rabbitmq": application_rabbitmq,
        }
