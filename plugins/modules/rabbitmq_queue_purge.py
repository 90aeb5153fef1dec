#!/usr/bin/python
# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rabbitmq_queue_purge
short_description: Purge the ready messages of one RabbitMQ queue, refusing while it has consumers
version_added: 0.3.0
author: Celerystack engineers (@celerystack)
description:
  - Removes every ready message of one queue, as C(rabbitmqctl purge_queue) does, and reports
    exactly how many went. Messages delivered and not yet acknowledged stay (they belong to a
    consumer).
  - Runs on a broker node and talks to it with C(rabbitmqctl) (root, or the C(rabbitmq) user).
    The queue's figures are read live from the queue itself, never from the management plugin's
    statistics, which lag by up to C(collect_statistics_interval) (5 s by default). Read from
    them, a queue filled a moment ago looks empty and is not purged, and workers stopped a
    moment ago still look attached. A quorum queue's figures are its last tick's (up to a
    second old), so a queue that looks attached is read again for a few seconds before the
    purge is refused; the purge itself removes whatever is ready then, and reports that count.
  - Refuses while the queue has more consumers than O(max_consumers) (by default any). A Celery
    worker holds up to its prefetch of messages unacknowledged, and C(celery purge) with workers
    running is known to leave monitors waiting for tasks that never run; stop the queue's
    workers first (C(playbooks/purge.yml) does, warmly, and starts them again).
  - In check mode nothing is purged and the count is what would go.
attributes:
  check_mode:
    support: full
    description: Reads the queue and reports what a purge would remove.
  diff_mode:
    support: full
    description: The queue's ready messages before and after.
options:
  vhost:
    description: The vhost.
    type: str
    default: /
  name:
    description: The queue.
    type: str
    required: true
  max_consumers:
    description: The most consumers the queue may have for the purge to go ahead.
    type: int
    default: 0
  node:
    description: The node to ask (C(rabbitmqctl -n)); by default the local one.
    type: str
"""

EXAMPLES = r"""
- name: Purge the email queue once its workers are stopped
  celerystack.platform.rabbitmq_queue_purge:
    vhost: /celery
    name: email
  register: purged

- name: Say how many went
  ansible.builtin.debug:
    msg: "{{ purged.purged }} messages purged from email"
"""

RETURN = r"""
purged:
  description: >-
    Ready messages removed, as the queue counted them (in check mode, the ready messages that a
    purge would remove).
  returned: success
  type: int
messages_unacknowledged:
  description: Messages still held by consumers, untouched.
  returned: success
  type: int
consumers:
  description: Consumers of the queue when it was read.
  returned: always
  type: int
"""

import json
import re
import time

from ansible.module_utils.basic import AnsibleModule

# A queue that looks attached is read again this many times, a second apart, before the purge is
# refused: a quorum queue publishes its consumer count once a second (its tick).
REREADS = 3

# The columns read, in this order; `rabbitmqctl list_queues` asks each queue process for them.
COLUMNS = ("name", "messages_ready", "messages_unacknowledged", "consumers")


class Refused(Exception):
    """The purge would be unsafe."""


class Failed(Exception):
    """The node could not be asked, or answered something unexpected."""


def find_queue(listing, name, vhost):
    """The row of queue `name` in the JSON output of `rabbitmqctl list_queues`."""
    try:
        rows = json.loads(listing)
    except ValueError:
        raise Failed(
            "rabbitmqctl list_queues printed no JSON: %s" % listing.strip()[:200]
        ) from None
    for row in rows:
        if row.get("name") == name:
            return row
    raise Failed("no queue %s in vhost %s" % (name, vhost))


def plan(queue, vhost, max_consumers):
    """The ready messages a purge of `queue` (a row of the listing) removes. Raises Refused when
    the queue has more consumers than allowed."""
    consumers = int(queue.get("consumers") or 0)
    if consumers > max_consumers:
        raise Refused(
            "refused: queue %s in vhost %s has %d consumer(s) (at most %d allowed); stop its "
            "workers first (playbooks/purge.yml with celerystack_purge_stop_workers=true does, "
            "warmly, and starts them again)" % (queue["name"], vhost, consumers, max_consumers)
        )
    return int(queue.get("messages_ready") or 0)


def purge_diff(name, purged):
    """The diff of a purge that removed `purged` ready messages (none when nothing went)."""
    if not purged:
        return {}
    return {"before": "%s: %d ready\n" % (name, purged), "after": "%s: 0 ready\n" % name}


def erlang_binary(text):
    """`text` as an Erlang binary literal of its UTF-8 bytes: nothing in a name can end the
    literal or reach the expression around it."""
    return "<<%s>>" % ",".join(str(byte) for byte in bytearray(text.encode("utf-8")))


def purge_expression(vhost, name):
    """The expression `rabbitmqctl eval` runs to purge the queue. `rabbitmqctl purge_queue` drops
    the count the broker returns; this keeps it, so the report is what went, not what was read a
    moment before (a message published in between is purged too)."""
    return (
        "case rabbit_amqqueue:lookup(rabbit_misc:r(%s, queue, %s)) of "
        "{ok, Q} -> rabbit_amqqueue:purge(Q); Other -> Other end."
        % (erlang_binary(vhost), erlang_binary(name))
    )


def parse_purged(output):
    """The count of `{ok,N}` from the eval, or Failed with what the node said."""
    match = re.match(r"^\s*\{ok,\s*(\d+)\}\s*$", output)
    if not match:
        raise Failed("the purge failed: %s" % output.strip()[:200])
    return int(match.group(1))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            vhost=dict(type="str", default="/"),
            name=dict(type="str", required=True),
            max_consumers=dict(type="int", default=0),
            node=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    vhost, name = module.params["vhost"], module.params["name"]
    ctl = [module.get_bin_path("rabbitmqctl", required=True), "-q"]
    if module.params["node"]:
        ctl += ["-n", module.params["node"]]

    def run(*args):
        rc, out, err = module.run_command(ctl + list(args), environ_update={"LC_ALL": "C.UTF-8"})
        if rc != 0:
            raise Failed("rabbitmqctl %s failed (rc %d): %s" % (args[0], rc, (err or out).strip()))
        return out

    queue = {}
    try:
        for attempt in range(REREADS + 1):
            listing = run("list_queues", "--vhost", vhost, "--formatter", "json", *COLUMNS)
            queue = find_queue(listing, name, vhost)
            try:
                ready = plan(queue, vhost, module.params["max_consumers"])
                break
            except Refused:
                if attempt == REREADS:
                    raise
                time.sleep(1)
        if not module.check_mode:
            # Purged whatever the count read: a queue that looked empty may have filled since.
            ready = parse_purged(run("eval", purge_expression(vhost, name)))
    except Failed as err:
        module.fail_json(msg=str(err))
    except Refused as err:
        module.fail_json(msg=str(err), consumers=int(queue.get("consumers") or 0))
    module.exit_json(
        changed=ready > 0,
        purged=ready,
        messages_unacknowledged=int(queue.get("messages_unacknowledged") or 0),
        consumers=int(queue.get("consumers") or 0),
        diff=purge_diff(name, ready),
    )


if __name__ == "__main__":
    main()
