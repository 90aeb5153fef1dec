# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One topology entry reduced to what the rabbitmq_topology module takes."""

from __future__ import annotations

from ansible_collections.celerystack.platform.plugins.module_utils.rabbitmq_topology import declared

DOCUMENTATION = """
name: rabbitmq_declared
author: Celerystack engineers (@celerystack)
version_added: 0.1.0
short_description: Reduce a topology to the broker's attributes
description:
  - A topology variable may carry more than the broker needs (the worker settings of each queue,
    for example). This filter keeps the attributes of exchanges, queues, bindings and policies
    that M(celerystack.platform.rabbitmq_topology) takes, with its defaults filled in.
options:
  _input:
    description: A topology C({vhost, exchanges, queues, bindings, policies}).
    type: dict
    required: true
"""

EXAMPLES = """
- name: Ensure the declared topology exists
  celerystack.platform.rabbitmq_topology:
    login_password: "{{ vault_rabbitmq_admin_password }}"
    vhost: "{{ declared.vhost }}"
    queues: "{{ declared.queues }}"
  vars:
    declared: "{{ topology | celerystack.platform.rabbitmq_declared }}"
"""

RETURN = """
_value:
  description: C({vhost, exchanges, queues, bindings, policies}) with only broker attributes.
  type: dict
"""


def rabbitmq_declared(topology):
    return declared(topology)


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self):
        return {"rabbitmq_declared": rabbitmq_declared}
