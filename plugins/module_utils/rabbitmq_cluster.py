# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A RabbitMQ cluster as the inventory declares it, and what a running cluster lacks or has too
many of. Pure functions: the filter (plugins/filter/rabbitmq_cluster.py) and the tasks that join
and forget nodes share them.

RabbitMQ names a node rabbit@<short host name> (Debian's package, short names), and every node
must resolve every other node's short name. The names come from each broker host's own facts
(its hostname), or from the inventory where facts are not certain (rabbitmq_nodename), never from
the inventory host name alone: an inventory may call a host by its address or by any alias.
"""

from __future__ import annotations

import ipaddress
import re

# Erlang node names: name@host, both parts plain (RabbitMQ's CLI refuses anything else).
_NAME = re.compile(r"^[A-Za-z0-9_-]+@[A-Za-z0-9][A-Za-z0-9-]*$")


class ClusterInvalid(ValueError):
    def __init__(self, errors):
        super().__init__("; ".join(errors))
        self.errors = list(errors)


def _literal_ip(value) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def node_name(host: str, variables) -> str | None:
    """rabbit@<short host name> for one broker host, or None when nothing certain says it."""
    explicit = variables.get("rabbitmq_nodename")
    if explicit:
        return str(explicit)
    facts = variables.get("ansible_facts") or {}
    short = facts.get("hostname")
    if short:
        return "rabbit@" + str(short).split(".", 1)[0]
    return None


def address(variables) -> str | None:
    """The address the other brokers reach this one at (inventory first, facts second)."""
    for candidate in (variables.get("celerystack_address"), variables.get("ansible_host")):
        if candidate and _literal_ip(candidate):
            return str(candidate)
    facts = variables.get("ansible_facts") or {}
    found = (facts.get("default_ipv4") or {}).get("address")
    return str(found) if found else None


def members(hosts, hostvars) -> list[dict]:
    """One entry per broker host, in inventory order: {host, node, short, address}. The first
    is the seed, which a new cluster forms around."""
    if isinstance(hosts, str) or not hasattr(hosts, "__iter__"):
        raise ClusterInvalid(
            ["rabbitmq_cluster expects a list of broker host names, got %r" % (hosts,)]
        )
    errors, entries, seen = [], [], {}
    for host in hosts:
        variables = hostvars[host]
        node = node_name(host, variables)
        where = address(variables)
        if node is None:
            errors.append(
                "%s: no RabbitMQ node name known; set rabbitmq_nodename (rabbit@<its short host "
                "name>) for the host, or gather its facts in the same run" % host
            )
            continue
        if not _NAME.match(node):
            errors.append("%s: rabbitmq_nodename %r is not name@shorthost" % (host, node))
            continue
        if where is None:
            errors.append(
                "%s: no address known for the other brokers to reach it; set "
                "celerystack_address for the host, or gather its facts in the same run" % host
            )
            continue
        if node in seen:
            errors.append("%s: node name %s is also %s's" % (host, node, seen[node]))
            continue
        seen[node] = host
        entries.append(
            {"host": str(host), "node": node, "short": node.split("@", 1)[1], "address": where}
        )
    if errors:
        raise ClusterInvalid(errors)
    return entries


def membership(entries, status) -> dict:
    """What a running cluster lacks and has too many of, against the inventory.

    status is `rabbitmqctl cluster_status --formatter json` of a node in the cluster. Returns
    {members, running, forget, absent}: the nodes to forget (in the cluster, not in the
    inventory: a broker taken out of the inventory), and the inventory nodes that are not members
    yet (a broker added: it joins when it starts blank, or is joined)."""
    wanted = [entry["node"] for entry in entries]
    cluster = list(status.get("disk_nodes") or []) + list(status.get("ram_nodes") or [])
    running = list(status.get("running_nodes") or [])
    return {
        "members": cluster,
        "running": running,
        "forget": [node for node in cluster if node not in wanted],
        "absent": [node for node in wanted if node not in cluster],
    }
