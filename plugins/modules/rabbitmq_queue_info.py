#!/usr/bin/python
# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rabbitmq_queue_info
short_description: Read queue depth, consumers and rates from RabbitMQ without consuming anything
version_added: 0.1.0
author: Celerystack engineers (@celerystack)
description:
  - Reads the queue list of one vhost from the management HTTP API. It never gets, acks or
    requeues a message, so it is safe on a production backlog (unlike reading messages to count
    them).
  - The figures are the management plugin's statistics, which lag the queue by up to
    C(collect_statistics_interval) (5 s by default). Good for watching a backlog and for alerts;
    a decision that must see a message published a moment ago (a purge) asks the node instead,
    as M(celerystack.platform.rabbitmq_queue_purge) does.
extends_documentation_fragment:
  - celerystack.platform.rabbitmq_api
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is no diff.
options:
  vhost:
    description: The vhost.
    type: str
    default: /
  names:
    description:
      - Queues to report; all queues of the vhost when empty.
      - Names that are not found are listed in RV(missing).
    type: list
    elements: str
    default: []
  limits:
    description:
      - Health limits per queue name; the key C(*) applies to every reported queue that has no
        entry of its own. Each limit passed is listed in RV(breaches); the module never fails on
        one, the caller decides (for example C(failed_when) in a cron or alerting run).
      - Known limits are C(max_ready), C(max_unacknowledged), C(min_consumers) and
        C(max_age) (seconds since the oldest ready message was published, only for messages
        that carry a timestamp).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Read the backlog of the Celery queues
  celerystack.platform.rabbitmq_queue_info:
    login_password: "{{ vault_rabbitmq_admin_password }}"
    vhost: /celery
    names: [default, email, logstash]
  register: backlog

- name: Show the ready messages of each queue
  ansible.builtin.debug:
    msg: "{{ backlog.queues | items2dict(key_name='name', value_name='messages_ready') }}"
"""

RETURN = r"""
queues:
  description: One entry per queue found, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Queue name., type: str}
    type: {description: "Queue type: classic, quorum or stream.", type: str}
    state: {description: "Queue state, for example running or idle.", type: str}
    messages_ready: {description: Messages waiting for a consumer., type: int}
    messages_unacknowledged: {description: Messages delivered and not yet acked., type: int}
    messages: {description: Ready plus unacknowledged., type: int}
    consumers: {description: Attached consumers., type: int}
    publish_rate: {description: Messages published per second (recent average)., type: float}
    deliver_rate: {description: Messages delivered per second (recent average)., type: float}
    ack_rate: {description: Messages acked per second (recent average)., type: float}
    oldest_age:
      description:
        - Seconds since the oldest ready message was published, when it carries a timestamp
          (RabbitMQ reads it from the message's C(timestamp) property); null otherwise.
      type: float
breaches:
  description: One line per limit passed, naming the queue, the figure and the limit.
  returned: always
  type: list
  elements: str
missing:
  description: Requested names that are not queues of the vhost.
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.celerystack.platform.plugins.module_utils.rabbitmq_api import (
    ApiError,
    ManagementApi,
    connection_argument_spec,
)

COLUMNS = (
    "name,type,state,messages_ready,messages_unacknowledged,messages,consumers,message_stats,"
    "head_message_timestamp"
)
# A limit, the figure it bounds, and whether the figure may not exceed it (max) or fall below it.
LIMITS = {
    "max_ready": ("messages_ready", max),
    "max_unacknowledged": ("messages_unacknowledged", max),
    "min_consumers": ("consumers", min),
    "max_age": ("oldest_age", max),
}


def _rate(stats, key):
    return float((stats.get(key + "_details") or {}).get("rate", 0.0))


def summarize(queue, now=None):
    """One queue as the management API lists it, reduced to what an operator reads."""
    stats = queue.get("message_stats") or {}
    head = queue.get("head_message_timestamp")
    now = time.time() if now is None else now
    return {
        "name": queue["name"],
        "type": queue.get("type", "classic"),
        "state": queue.get("state", "unknown"),
        "messages_ready": int(queue.get("messages_ready") or 0),
        "messages_unacknowledged": int(queue.get("messages_unacknowledged") or 0),
        "messages": int(queue.get("messages") or 0),
        "consumers": int(queue.get("consumers") or 0),
        "publish_rate": _rate(stats, "publish"),
        "deliver_rate": _rate(stats, "deliver_get"),
        "ack_rate": _rate(stats, "ack"),
        "oldest_age": round(max(now - float(head), 0.0), 1) if head else None,
    }


def limit_errors(limits):
    """Each problem of the `limits` option, naming its path."""
    errors = []
    for name, queue_limits in sorted(limits.items()):
        if not isinstance(queue_limits, dict):
            errors.append("limits.%s must be a mapping of limits" % name)
            continue
        for limit, value in sorted(queue_limits.items()):
            if limit not in LIMITS:
                errors.append(
                    "limits.%s.%s is not a limit (known: %s)" % (name, limit, ", ".join(LIMITS))
                )
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                errors.append("limits.%s.%s must be a number, 0 or more" % (name, limit))
    return errors


def breaches(summaries, limits):
    """One line per limit a queue passes; a queue's own entry replaces the `*` one."""
    lines = []
    for queue in summaries:
        own = limits.get(queue["name"], limits.get("*", {}))
        for limit, bound in sorted(own.items()):
            figure, kind = LIMITS[limit]
            value = queue[figure]
            if value is None:
                continue
            if (kind is max and value > bound) or (kind is min and value < bound):
                lines.append("%s: %s %s, %s %s" % (queue["name"], figure, value, limit, bound))
    return lines


def select(queues, names):
    """(summaries of the selected queues, requested names not found)."""
    by_name = {q["name"]: summarize(q) for q in queues}
    wanted = names or sorted(by_name)
    return [by_name[n] for n in wanted if n in by_name], [n for n in wanted if n not in by_name]


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        vhost=dict(type="str", default="/"),
        names=dict(type="list", elements="str", default=[]),
        limits=dict(type="dict", default={}),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    errors = limit_errors(module.params["limits"])
    if errors:
        module.fail_json(msg="; ".join(errors))
    try:
        queues = ManagementApi(module.params).get("queues", module.params["vhost"], columns=COLUMNS)
    except ApiError as err:
        module.fail_json(msg=str(err))
    found, missing = select(queues, module.params["names"])
    module.exit_json(
        changed=False,
        queues=found,
        missing=missing,
        breaches=breaches(found, module.params["limits"]),
    )


if __name__ == "__main__":
    main()
