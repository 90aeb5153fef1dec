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

import json
import re
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.celerystack.platform.plugins.module_utils.addresses import (
    address_of,
    literal_ip,
)

# Erlang node names: name@host, both parts plain (RabbitMQ's CLI refuses anything else).
_NAME = re.compile(r"^[A-Za-z0-9_-]+@[A-Za-z0-9][A-Za-z0-9-]*$")


class ClusterInvalid(ValueError):
    def __init__(self, errors):
        super().__init__("; ".join(errors))
        self.errors = list(errors)


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
        where = address_of(variables)
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
        if not literal_ip(where):
            # The /etc/hosts block maps the node's name to it: a name there resolves nothing.
            errors.append(
                "%s: celerystack_address %r is not an IP address (the brokers' /etc/hosts block "
                "needs one)" % (host, where)
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


def _view(status) -> tuple[str, ...]:
    """The members a node's `rabbitmqctl cluster_status --formatter json` lists, sorted."""
    return tuple(sorted(set(status.get("disk_nodes") or []) | set(status.get("ram_nodes") or [])))


def plan(entries, statuses) -> dict:
    """What to do so that the running nodes form the one cluster the inventory declares.

    entries is the inventory's cluster (members()); statuses maps a node name to its own
    `cluster_status` (parsed), or to None where the node did not answer (not running yet, new,
    or outside a limited run): such a node is left alone.

    The cluster kept is the one most inventory nodes agree they belong to (each node's own view
    counts, not only what the others think of it); on a tie, the seed's. Returns:
    - anchor: an inventory node of that cluster that answered (commands run through it), or None
      when no node answered;
    - leave: its members the inventory no longer has (stopped, reset, forgotten);
    - join: inventory nodes that answered from outside it, alone (a wiped node, one that formed a
      cluster of its own when it first started, one taken out earlier): reset and joined, after
      being forgotten where the cluster still lists them;
    - forget_first: those of `join` the kept cluster still lists;
    - split: inventory nodes in a cluster of several other nodes; never reset by a run (two
      halves of a split network hold different messages: a person decides which half wins).
    """
    wanted = [entry["node"] for entry in entries]
    views = {node: _view(status) for node, status in statuses.items() if status}
    if not views:
        return {"anchor": None, "leave": [], "join": [], "forget_first": [], "split": []}
    scores: dict[tuple[str, ...], int] = {}
    for node in wanted:
        if node in views:
            view = views[node]
            scores[view] = scores.get(view, 0) + (1 if node in view else 0)
    seed_view = views.get(wanted[0]) if wanted else None
    kept = max(scores, key=lambda view: (scores[view], view == seed_view))
    anchor = next(node for node in wanted if views.get(node) == kept)
    join, forget_first, split = [], [], []
    for node in wanted:
        view = views.get(node)
        if view is None or view == kept:
            continue
        if len(view) > 1:
            split.append(node)
            continue
        join.append(node)
        if node in kept:
            forget_first.append(node)
    return {
        "anchor": anchor,
        "leave": [node for node in kept if node not in wanted],
        "join": join,
        "forget_first": forget_first,
        "split": split,
    }


# --- On a broker host: read every node, then act (modules/rabbitmq_cluster.py) ------------------


class ClusterError(RuntimeError):
    pass


def read_statuses(nodes, run) -> dict:
    """{node: its own cluster_status, or None}: each node read through the Erlang distribution,
    side by side (each CLI call starts a VM of its own, about a second). A node counts only once
    its RabbitMQ application runs: one still booting (a new node looking for its peers) is not
    read as a cluster of its own."""

    def one(node):
        rc, out, _err = run(
            ["rabbitmqctl", "-n", node, "-q", "cluster_status", "--formatter", "json"]
        )
        if rc != 0:
            return node, None
        try:
            status = json.loads(out)
        except ValueError:
            return node, None
        return node, status if node in (status.get("running_nodes") or []) else None

    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        return dict(pool.map(one, nodes))


def steps(result) -> list[tuple[str, list[list[str]]]]:
    """The commands of the leave phase (before the configuration forgets a name), with what each
    does in words, for the nodes taken out of the inventory."""
    planned = []
    for node in result["leave"]:
        # Reset (it leaves the cluster with no data), then the whole node stops: its service
        # ends cleanly (systemd does not start it again), and a run that puts it back starts it
        # as a blank node, which joins by itself.
        commands = [["rabbitmqctl", "-n", node, verb] for verb in ("stop_app", "reset", "stop")]
        planned.append(("%s leaves the cluster (reset and stopped)" % node, commands))
    return planned


def converge(entries, phase, run, check_mode=False) -> dict:
    """Read and plan; in the leave phase, act too (unless check_mode). Returns {changed,
    actions, plan, rejoin, before, after}.

    The join phase only reads: `rejoin` names the inventory nodes running outside the kept
    cluster, which the role rebuilds on their own hosts as new nodes (stopped, struck off where
    the cluster still lists them, their store wiped, started blank: they join by discovery, the
    path every new node takes). Joined from here instead (stop_app, reset, join_cluster,
    start_app), RabbitMQ 3.10 crashed in its feature-flag sync at start_app and the node stayed
    down. A node taken out that cannot be reached is forgotten instead of reset. Nodes split into
    two clusters of several nodes each stop the run: a person decides which half's messages win."""
    wanted = [entry["node"] for entry in entries]
    statuses = read_statuses(wanted, run)
    result = plan(entries, statuses)
    if result["split"]:
        raise ClusterError(
            "the brokers are split: %s form a cluster apart from %s's; no node was reset (decide "
            "which half to keep, reset the other's nodes by hand, then run again)"
            % (", ".join(result["split"]), result["anchor"])
        )
    before = sorted(_view(statuses[result["anchor"]])) if result["anchor"] else []
    planned = steps(result) if result["anchor"] and phase == "leave" else []
    actions = []
    for words, commands in planned:
        actions.append(words)
        if check_mode:
            continue
        for argv in commands:
            if run(argv)[0] == 0:
                continue
            # Unreachable (switched off, gone): struck off from the cluster instead.
            node = argv[2]
            forget = ["rabbitmqctl", "-n", result["anchor"], "forget_cluster_node", node]
            forgot = run(forget)
            if forgot[0] != 0:
                raise ClusterError("%s: %s" % (" ".join(forget), (forgot[2] or forgot[1]).strip()))
            actions[-1] = "%s could not be reached and was forgotten" % node
            break
    after = [node for node in before if phase != "leave" or node not in result["leave"]]
    # Each with `forget`: the cluster still lists it, so it is struck off before it starts blank.
    rejoin = [
        dict(entry, forget=entry["node"] in result["forget_first"])
        for entry in entries
        if phase == "join" and entry["node"] in result["join"]
    ]
    return {
        "changed": bool(actions),
        "actions": actions,
        "plan": result,
        "rejoin": rejoin,
        "before": {"members": before},
        "after": {"members": after},
    }
