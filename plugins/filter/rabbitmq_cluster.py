# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The RabbitMQ cluster the inventory declares (wrappers over module_utils/rabbitmq_cluster.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.celerystack.platform.plugins.module_utils import rabbitmq_cluster as core


def rabbitmq_cluster(hosts, hostvars):
    try:
        return core.members(hosts, hostvars)
    except core.ClusterInvalid as err:
        raise AnsibleFilterError("\n".join(err.errors)) from err


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self):
        return {
            "rabbitmq_cluster": rabbitmq_cluster,
        }
