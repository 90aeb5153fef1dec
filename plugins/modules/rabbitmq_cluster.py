#!/usr/bin/python
# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rabbitmq_cluster
short_description: Make the running RabbitMQ nodes the one cluster the inventory declares
version_added: 0.7.0
author: Celerystack engineers (@celerystack)
description:
  - Runs on one broker host and reads every node of O(cluster) through the Erlang distribution
    (the nodes share the cookie; every name must resolve on this host). A node that does not
    answer, or whose RabbitMQ application is not running yet, is left alone.
  - The cluster kept is the one most of the inventory's nodes agree they belong to (each node's
    own view), on a tie the seed's (the first node).
  - O(phase=leave), before the configuration forgets a name, stops and resets each member the
    inventory no longer lists (it leaves the cluster with no data), and forgets one that cannot
    be reached.
  - O(phase=join) only reads. It names in RV(rejoin) each inventory node that runs outside the
    kept cluster alone (a wiped node, one that formed a cluster of its own when it first
    started, one put back whose discovery failed), for the caller to rebuild on the node's own
    host as a new node (stopped, forgotten where its C(forget) is true, its store wiped, started
    blank), which joins by discovery. The role's C(tasks/cluster.yml) does. Joining it from here
    (C(stop_app), C(reset), C(join_cluster), C(start_app)) crashed RabbitMQ 3.10 in its
    feature-flag sync.
  - Never resets a node that is in a cluster of several other nodes (a split network's other
    half); it fails and names them.
attributes:
  check_mode:
    support: full
    description: Reads every node and reports what it would do.
  diff_mode:
    support: full
    description: The kept cluster's members before and after the leave phase.
options:
  cluster:
    description: The inventory's cluster, the seed first (the C(rabbitmq_cluster) filter); each
      entry needs C(node).
    type: list
    elements: dict
    required: true
  phase:
    description: C(leave) or C(join).
    type: str
    choices: [leave, join]
    required: true
"""

EXAMPLES = r"""
- name: Let the nodes the inventory no longer has leave the cluster
  celerystack.platform.rabbitmq_cluster:
    cluster: "{{ groups['brokers'] | celerystack.platform.rabbitmq_cluster(hostvars) }}"
    phase: leave
"""

RETURN = r"""
actions:
  description: What was done (or would be, in check mode), one sentence per node.
  returned: always
  type: list
  elements: str
plan:
  description: The kept cluster's C(anchor) node, and the nodes to C(leave) and C(join).
  returned: always
  type: dict
rejoin:
  description:
    - O(phase=join) only; the inventory's entries of the nodes to rebuild, each with C(forget),
      true where the kept cluster still lists the node.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.celerystack.platform.plugins.module_utils import rabbitmq_cluster as core


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cluster=dict(type="list", elements="dict", required=True),
            phase=dict(type="str", choices=["leave", "join"], required=True),
        ),
        supports_check_mode=True,
    )
    entries = module.params["cluster"]
    if any(not isinstance(entry.get("node"), str) for entry in entries):
        module.fail_json(msg="cluster: every entry needs a node name (the rabbitmq_cluster filter)")

    def run(argv):
        return module.run_command(argv)

    try:
        result = core.converge(entries, module.params["phase"], run, module.check_mode)
    except core.ClusterError as err:
        module.fail_json(msg=str(err))
    module.exit_json(
        changed=result["changed"],
        actions=result["actions"],
        plan=result["plan"],
        rejoin=result["rejoin"],
        diff={"before": result["before"], "after": result["after"]} if module._diff else {},
    )


if __name__ == "__main__":
    main()
