#!/usr/bin/python
# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rabbitmq_topology
short_description: Converge the exchanges, queues, bindings and policies of one RabbitMQ vhost
version_added: 0.1.0
author: Celerystack engineers (@celerystack)
description:
  - Reads the vhost's objects from the management HTTP API, compares every declared attribute
    (each C(x-*) argument, C(x-queue-type) included), and makes only the changes needed.
  - RabbitMQ cannot change an exchange or queue in place. An incompatible change fails, naming
    the object, the attribute, the current and the wanted value, unless O(allow_recreate) is on.
  - Policies are updated in place. Bindings are identified by everything they are.
  - Objects that are not declared are left alone unless O(remove_undeclared) is on; the broker's
    own exchanges (the default exchange and C(amq.*)) are never removed, nor what Celery's
    workers declare themselves (native delayed delivery's C(celery_delayed_*) exchanges and
    queues, C(celeryev), C(celery.pidbox) and reply queues) or their bindings.
extends_documentation_fragment:
  - celerystack.platform.rabbitmq_api
attributes:
  check_mode:
    support: full
    description: Computes every change from the live broker and reports it without writing.
  diff_mode:
    support: full
    description: Returns C(before) and C(after) of every object that changes.
options:
  vhost:
    description: The vhost; it must exist.
    type: str
    default: /
  exchanges:
    description: Exchanges to declare.
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: Exchange name., type: str, required: true}
      type: {description: Exchange type., type: str, default: direct}
      durable: {description: Survives a broker restart., type: bool, default: true}
      auto_delete: {description: Deleted when its last binding goes., type: bool, default: false}
      internal: {description: Only other exchanges may publish to it., type: bool, default: false}
      arguments: {description: Exchange arguments., type: dict, default: {}}
  queues:
    description: Queues to declare. C(x-queue-type) defaults to C(classic) and is compared.
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: Queue name., type: str, required: true}
      durable: {description: Survives a broker restart., type: bool, default: true}
      auto_delete: {description: Deleted when its last consumer goes., type: bool, default: false}
      arguments:
        description:
          - Queue arguments (C(x-queue-type), C(x-dead-letter-exchange), C(x-max-priority), ...).
        type: dict
        default: {}
  bindings:
    description: Bindings to declare.
    type: list
    elements: dict
    default: []
    suboptions:
      source: {description: Source exchange., type: str, required: true}
      destination: {description: Destination queue or exchange., type: str, required: true}
      destination_type:
        description: What O(bindings[].destination) is.
        type: str
        choices: [queue, exchange]
        default: queue
      routing_key: {description: Routing key., type: str, default: ""}
      arguments: {description: Binding arguments (headers exchanges)., type: dict, default: {}}
  policies:
    description: Policies to declare; updated in place.
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: Policy name., type: str, required: true}
      pattern:
        description: Regular expression of the object names it applies to.
        type: str
        required: true
      apply_to:
        description: Which objects it applies to.
        type: str
        choices: [all, queues, exchanges, classic_queues, quorum_queues, streams]
        default: all
      priority: {description: Higher wins when several policies match., type: int, default: 0}
      definition: {description: The policy's keys and values., type: dict, required: true}
  allow_recreate:
    description:
      - Delete and recreate an exchange or queue whose declared attributes differ from the broker's.
      - A recreated queue loses its messages. Off by default.
    type: bool
    default: false
  remove_undeclared:
    description: Remove exchanges, queues, bindings and policies of the vhost that are not declared.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Ensure the logstash queue is bound to its exchange
  celerystack.platform.rabbitmq_topology:
    login_password: "{{ vault_rabbitmq_admin_password }}"
    vhost: /celery
    exchanges:
      - name: logstash
        type: direct
    queues:
      - name: logstash
        arguments:
          x-queue-type: quorum
          x-dead-letter-exchange: logstash.dlx
    bindings:
      - source: logstash
        destination: logstash
        routing_key: logstash
    policies:
      - name: ha-none
        pattern: "^celery\\."
        definition:
          expires: 3600000
"""

RETURN = r"""
changes:
  description: What was done (or would be, in check mode), in order.
  returned: always
  type: list
  elements: dict
  sample:
    - {action: create, kind: queue, name: logstash}
    - {action: create, kind: binding, name: "logstash -> queue logstash [logstash] {}"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.celerystack.platform.plugins.module_utils.rabbitmq_api import (
    connection_argument_spec,
    converge,
)
from ansible_collections.celerystack.platform.plugins.module_utils.rabbitmq_topology import (
    TopologyError,
    binding_key,
    normalize_binding,
    plan,
)


def read_current(api, vhost):
    if not any(v["name"] == vhost for v in api.get("vhosts")):
        raise TopologyError("vhost '%s' does not exist: create it first" % vhost)
    return {
        "exchange": api.get("exchanges", vhost),
        "queue": api.get("queues", vhost, columns="name,durable,auto_delete,arguments,type"),
        "binding": api.get("bindings", vhost),
        "policy": api.get("policies", vhost),
    }


def apply(api, vhost, changes, current_bindings):
    raw_bindings = {binding_key(normalize_binding(b)): b for b in current_bindings}
    for change in changes:
        kind, action, name, obj = change["kind"], change["action"], change["name"], change["after"]
        if action in ("delete", "recreate"):
            if kind == "binding":
                raw = raw_bindings[name]
                letter = "q" if raw["destination_type"] == "queue" else "e"
                api.delete(
                    "bindings",
                    vhost,
                    "e",
                    raw["source"],
                    letter,
                    raw["destination"],
                    raw["properties_key"],
                )
            else:
                api.delete(kind + "s" if kind != "policy" else "policies", vhost, name)
        if action == "delete":
            continue
        if kind == "exchange":
            body = {k: obj[k] for k in ("type", "durable", "auto_delete", "internal", "arguments")}
            api.put(body, "exchanges", vhost, name)
        elif kind == "queue":
            body = {k: obj[k] for k in ("durable", "auto_delete", "arguments")}
            api.put(body, "queues", vhost, name)
        elif kind == "binding":
            letter = "q" if obj["destination_type"] == "queue" else "e"
            body = {"routing_key": obj["routing_key"], "arguments": obj["arguments"]}
            api.post(body, "bindings", vhost, "e", obj["source"], letter, obj["destination"])
        else:
            body = {
                "pattern": obj["pattern"],
                "definition": obj["definition"],
                "priority": obj["priority"],
                "apply-to": obj["apply_to"],
            }
            api.put(body, "policies", vhost, name)


def run(module, api):
    """Read, plan, and (outside check mode) apply; returns the planned changes."""
    params = module.params
    current = read_current(api, params["vhost"])
    wanted = {
        "exchange": params["exchanges"],
        "queue": params["queues"],
        "binding": params["bindings"],
        "policy": params["policies"],
    }
    changes = plan(current, wanted, params["allow_recreate"], params["remove_undeclared"])
    if changes and not module.check_mode:
        apply(api, params["vhost"], changes, current["binding"])
    return changes


def _list_of(**options):
    return dict(type="list", elements="dict", default=[], options=options)


# Exchanges and queues share these; each adds its own.
_DECLARED_OBJECT = dict(
    name=dict(type="str", required=True),
    durable=dict(type="bool", default=True),
    auto_delete=dict(type="bool", default=False),
    arguments=dict(type="dict", default={}),
)


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        vhost=dict(type="str", default="/"),
        exchanges=_list_of(
            type=dict(type="str", default="direct"),
            internal=dict(type="bool", default=False),
            **_DECLARED_OBJECT,
        ),
        queues=_list_of(**_DECLARED_OBJECT),
        bindings=_list_of(
            source=dict(type="str", required=True),
            destination=dict(type="str", required=True),
            destination_type=dict(type="str", choices=["queue", "exchange"], default="queue"),
            routing_key=dict(type="str", default="", no_log=False),
            arguments=dict(type="dict", default={}),
        ),
        policies=_list_of(
            name=dict(type="str", required=True),
            pattern=dict(type="str", required=True),
            apply_to=dict(
                type="str",
                default="all",
                choices=[
                    "all",
                    "queues",
                    "exchanges",
                    "classic_queues",
                    "quorum_queues",
                    "streams",
                ],
            ),
            priority=dict(type="int", default=0),
            definition=dict(type="dict", required=True),
        ),
        allow_recreate=dict(type="bool", default=False),
        remove_undeclared=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    converge(module, run, (TopologyError,))


if __name__ == "__main__":
    main()
