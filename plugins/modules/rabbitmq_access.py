#!/usr/bin/python
# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rabbitmq_access
short_description: Converge RabbitMQ vhosts, users, tags and per-vhost permissions
version_added: 0.1.0
author: Celerystack engineers (@celerystack)
description:
  - Reads vhosts, users and permissions from the management HTTP API and makes only the changes
    needed, in one run and without any C(rabbitmqctl) call, so no password is ever on a command
    line.
  - A password is compared with the stored hash, never sent in clear. Users are written as
    SHA-256 password hashes; the same password always gives the same hash, which keeps the node's
    definitions file and the live broker identical.
  - The permissions declared for a user are all of that user's permissions; permissions of that
    user on other vhosts are removed.
  - Users and vhosts that are not declared are left alone unless O(remove_undeclared_users) or
    O(remove_undeclared_vhosts) is on. The O(login_user) is never removed.
extends_documentation_fragment:
  - celerystack.platform.rabbitmq_api
attributes:
  check_mode:
    support: full
    description: Computes every change from the live broker and reports it without writing.
  diff_mode:
    support: full
    description:
      - Returns C(before) and C(after) of every vhost, user and permission that changes.
      - A password shows only as C(set), C(changed) or C(unchanged).
options:
  vhosts:
    description: Vhosts that must exist.
    type: list
    elements: str
    default: []
  users:
    description: Users that must exist with exactly these tags and permissions.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User name.
        type: str
        required: true
      password:
        description: Password; from a vault variable. Changed on the broker when it differs.
        type: str
        required: true
      tags:
        description: Tags such as C(administrator), C(monitoring) or C(management).
        type: list
        elements: str
        default: []
      permissions:
        description: The user's permissions, one entry per vhost.
        type: list
        elements: dict
        default: []
        suboptions:
          vhost:
            description: The vhost; declared in O(vhosts) or already present.
            type: str
            required: true
          configure:
            description: Regular expression of the resources the user may declare and delete.
            type: str
            default: .*
          write:
            description: Regular expression of the resources the user may publish to or bind.
            type: str
            default: .*
          read:
            description: Regular expression of the resources the user may consume from.
            type: str
            default: .*
  remove_undeclared_users:
    description: Remove users that are not declared (C(guest) included), except O(login_user).
    type: bool
    default: false
  remove_undeclared_vhosts:
    description:
      - Remove vhosts that are not declared. Removing a vhost removes its queues and messages.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Ensure the Celery vhost and user exist and guest is gone
  celerystack.platform.rabbitmq_access:
    login_password: "{{ vault_rabbitmq_admin_password }}"
    vhosts:
      - /celery
    users:
      - name: admin
        password: "{{ vault_rabbitmq_admin_password }}"
        tags: [administrator]
      - name: celery
        password: "{{ vault_rabbitmq_celery_password }}"
        permissions:
          - vhost: /celery
            configure: "^(celery|celeryev|logstash).*"
    remove_undeclared_users: true
  no_log: true
"""

RETURN = r"""
changes:
  description: What was done (or would be, in check mode), in order; no passwords.
  returned: always
  type: list
  elements: dict
  sample:
    - {action: create, kind: vhost, name: /celery}
    - {action: update, kind: user, name: celery}
    - {action: delete, kind: user, name: guest}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.celerystack.platform.plugins.module_utils.rabbitmq_access import (
    AccessError,
    plan,
    user_definition,
)
from ansible_collections.celerystack.platform.plugins.module_utils.rabbitmq_api import (
    connection_argument_spec,
    converge,
)


def read_current(api):
    return {
        "vhosts": [v["name"] for v in api.get("vhosts")],
        "users": api.get("users"),
        "permissions": api.get("permissions"),
    }


def apply(api, changes, users):
    declared = {u["name"]: u for u in users}
    for change in changes:
        kind, action, name = change["kind"], change["action"], change["name"]
        if kind == "vhost":
            if action == "delete":
                api.delete("vhosts", name)
            else:
                api.put({}, "vhosts", name)
        elif kind == "user":
            if action == "delete":
                api.delete("users", name)
            else:
                body = user_definition(declared[name])
                body["tags"] = ",".join(body["tags"])
                del body["name"]
                api.put(body, "users", name)
        else:
            perm = change["after"] or change["before"]
            if action == "delete":
                api.delete("permissions", perm["vhost"], perm["user"])
            else:
                body = {k: perm[k] for k in ("configure", "write", "read")}
                api.put(body, "permissions", perm["vhost"], perm["user"])


def run(module, api):
    params = module.params
    changes = plan(
        read_current(api),
        params["vhosts"],
        params["users"],
        params["login_user"],
        params["remove_undeclared_users"],
        params["remove_undeclared_vhosts"],
    )
    if changes and not module.check_mode:
        apply(api, changes, params["users"])
    return changes


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        vhosts=dict(type="list", elements="str", default=[]),
        users=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                name=dict(type="str", required=True),
                password=dict(type="str", required=True, no_log=True),
                tags=dict(type="list", elements="str", default=[]),
                permissions=dict(
                    type="list",
                    elements="dict",
                    default=[],
                    options=dict(
                        vhost=dict(type="str", required=True),
                        configure=dict(type="str", default=".*"),
                        write=dict(type="str", default=".*"),
                        read=dict(type="str", default=".*"),
                    ),
                ),
            ),
        ),
        remove_undeclared_users=dict(type="bool", default=False),
        remove_undeclared_vhosts=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    converge(module, run, (AccessError,))


if __name__ == "__main__":
    main()
