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
  - Removes every ready message of one queue through the management HTTP API (the same as
    C(rabbitmqctl purge_queue)). Messages delivered and not yet acknowledged stay (they belong
    to a consumer).
  - Refuses while the queue has more consumers than O(max_consumers) (by default any). A Celery
    worker holds up to its prefetch of messages unacknowledged, and C(celery purge) with workers
    running is known to leave monitors waiting for tasks that never run; stop the queue's
    workers first (C(playbooks/purge.yml) does, warmly, and starts them again).
  - Reports how many ready messages went. In check mode nothing is purged and the count is what
    would go.
extends_documentation_fragment:
  - celerystack.platform.rabbitmq_api
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
"""

EXAMPLES = r"""
- name: Purge the email queue once its workers are stopped
  celerystack.platform.rabbitmq_queue_purge:
    login_password: "{{ vault_rabbitmq_admin_password }}"
    vhost: /celery
    name: email
  register: purged

- name: Say how many went
  ansible.builtin.debug:
    msg: "{{ purged.purged }} messages purged from email"
"""

RETURN = r"""
purged:
  description: Ready messages removed (in check mode, that would be removed).
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.celerystack.platform.plugins.module_utils.rabbitmq_api import (
    ApiError,
    ManagementApi,
    connection_argument_spec,
)


class Refused(Exception):
    """The purge would be unsafe."""


def plan(queue, vhost, max_consumers):
    """What a purge of `queue` (as the API describes it) does: (ready messages to remove, diff).
    Raises Refused when the queue has more consumers than allowed."""
    consumers = int(queue.get("consumers") or 0)
    if consumers > max_consumers:
        raise Refused(
            "refused: queue %s in vhost %s has %d consumer(s) (at most %d allowed); stop its "
            "workers first (playbooks/purge.yml with celerystack_purge_stop_workers=true does, "
            "warmly, and starts them again)" % (queue["name"], vhost, consumers, max_consumers)
        )
    ready = int(queue.get("messages_ready") or 0)
    return ready, {
        "before": "%s: %d ready\n" % (queue["name"], ready),
        "after": "%s: 0 ready\n" % queue["name"],
    }


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        vhost=dict(type="str", default="/"),
        name=dict(type="str", required=True),
        max_consumers=dict(type="int", default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    vhost, name = module.params["vhost"], module.params["name"]
    api = ManagementApi(module.params)
    try:
        queue = api.get("queues", vhost, name)
        ready, diff = plan(queue, vhost, module.params["max_consumers"])
        if ready and not module.check_mode:
            api.delete("queues", vhost, name, "contents")
    except ApiError as err:
        if " 404 " in str(err):
            module.fail_json(msg="no queue %s in vhost %s" % (name, vhost))
        module.fail_json(msg=str(err))
    except Refused as err:
        module.fail_json(msg=str(err), consumers=int(queue.get("consumers") or 0))
    module.exit_json(
        changed=ready > 0,
        purged=ready,
        messages_unacknowledged=int(queue.get("messages_unacknowledged") or 0),
        consumers=int(queue.get("consumers") or 0),
        diff=diff if ready else {},
    )


if __name__ == "__main__":
    main()
