# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The RabbitMQ definitions document a node imports at boot, from the role's variables."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.celerystack.platform.plugins.module_utils import topology as core
from ansible_collections.celerystack.platform.plugins.module_utils.rabbitmq_access import (
    normalize_user,
    user_definition,
)
from ansible_collections.celerystack.platform.plugins.module_utils.rabbitmq_topology import GROUPS

DOCUMENTATION = """
name: rabbitmq_definitions
author: Celerystack engineers (@celerystack)
version_added: 0.1.0
short_description: Build a RabbitMQ definitions document from topologies, users and vhosts
description:
  - Returns the document RabbitMQ imports at boot (C(definitions.local.path)), so a node whose
    store was wiped comes back with its vhosts, users, permissions, exchanges, queues, bindings
    and policies.
  - Objects are what the C(celerystack.platform.topology_broker) filter derives (the same
    defaults as in M(celerystack.platform.rabbitmq_topology)), and users get the same password
    hashes as in M(celerystack.platform.rabbitmq_access), so the file and the live
    broker agree. Keys that the broker does not know (such as worker settings) are ignored.
options:
  _input:
    description: Topologies, each C({vhost, exchanges, queues, bindings, policies}).
    type: list
    elements: dict
    required: true
  users:
    description: Users as M(celerystack.platform.rabbitmq_access) takes them.
    type: list
    elements: dict
    default: []
  vhosts:
    description: Vhosts; the vhosts of the topologies are added.
    type: list
    elements: str
    default: []
"""

EXAMPLES = """
- name: Ensure the boot definitions file is present
  ansible.builtin.copy:
    content: "{{ topologies | celerystack.platform.rabbitmq_definitions(users) | to_nice_json }}"
    dest: /etc/rabbitmq/definitions.json
    mode: "0640"
  no_log: true
"""

RETURN = """
_value:
  description: The definitions document (password hashes only, never passwords).
  type: dict
"""


def rabbitmq_definitions(topologies, users=None, vhosts=None):
    doc = {"users": [], "vhosts": [], "permissions": []}
    doc.update((group, []) for _kind, group in GROUPS)
    names = list(vhosts or [])
    for topology in topologies or []:
        try:
            objects = core.broker(topology)
        except core.TopologyInvalid as err:
            raise AnsibleFilterError("\n".join(err.errors)) from err
        if objects["vhost"] not in names:
            names.append(objects["vhost"])
        for _kind, group in GROUPS:
            for obj in objects[group]:
                obj["vhost"] = objects["vhost"]
                if group == "policies":
                    obj["apply-to"] = obj.pop("apply_to")
                doc[group].append(obj)
    doc["vhosts"] = [{"name": name} for name in names]
    for user in users or []:
        doc["users"].append(user_definition(user))
        doc["permissions"].extend(normalize_user(user)["permissions"])
    return doc


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self):
        return {"rabbitmq_definitions": rabbitmq_definitions}
