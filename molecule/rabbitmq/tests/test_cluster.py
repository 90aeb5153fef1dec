"""A RabbitMQ cluster from the inventory (rabbitmq_cluster_hosts): three plain brokers. It forms
in one converge, a quorum queue has a replica on every node; a node taken out of the inventory
leaves on the next converge, one put back joins, and one wiped by the role rejoins. The single
TLS node beside it stays a cluster of one (the default). What the application sees of a node
killed and of a rolling restart is proven with the application itself, in the site scenario's
three-broker cluster (molecule/site/tests/test_cluster.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import testinfra
import yaml
from celerystack_testlib import run_playbook

NODES = sorted(["rabbit@rabbit-plain", "rabbit@rabbit-peer1", "rabbit@rabbit-peer2"])
# Without rabbit-peer2.
TWO = sorted(["rabbit@rabbit-plain", "rabbit@rabbit-peer1"])


def host(name):
    return testinfra.get_host(f"podman://{name}")


def cluster(name="rabbit-plain") -> dict:
    return json.loads(host(name).check_output("rabbitmqctl -q cluster_status --formatter json"))


def members(name="rabbit-plain") -> tuple[list[str], list[str]]:
    """(members, running members) as the node counts them."""
    status = cluster(name)
    return sorted(status["disk_nodes"]), sorted(status["running_nodes"])


def quorum_members(queue: str, vhost: str = "/other") -> list[str]:
    out = host("rabbit-plain").check_output(
        f"rabbitmqctl -q list_queues -p {vhost} name members --formatter json"
    )
    return sorted(next(q["members"] for q in json.loads(out) if q["name"] == queue))


def test_the_inventory_forms_one_cluster_and_a_single_node_stays_alone():
    assert members() == (NODES, NODES)
    assert cluster()["cluster_name"] == "celerystack"
    # Every node sees the same cluster, not only the seed.
    assert members("rabbit-peer2") == (NODES, NODES)
    assert members("rabbit-tls") == (["rabbit@rabbit-tls"], ["rabbit@rabbit-tls"])
    # What decides a partition: the minority pauses (three nodes).
    handling = host("rabbit-peer1").check_output(
        "rabbitmqctl -q eval 'application:get_env(rabbit, cluster_partition_handling).'"
    )
    assert handling == "{ok,pause_minority}"


def inventory_without(tmp_path, name: str) -> str:
    """A copy of the scenario's inventory with one host taken out, as an operator edits it."""
    source = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    target = tmp_path / "inventory"
    shutil.copytree(source, target)
    hosts = target / "ansible_inventory.yml"
    inventory = yaml.safe_load(hosts.read_text())
    for group in inventory.values():
        if isinstance(group, dict) and isinstance(group.get("hosts"), dict):
            group["hosts"].pop(name, None)
    hosts.write_text(yaml.safe_dump(inventory, sort_keys=False))  # the seed stays first
    return str(target)


def test_a_node_taken_out_leaves_put_back_joins_and_a_wiped_one_rejoins(tmp_path):
    out = run_playbook(inventory=inventory_without(tmp_path, "rabbit-peer2"))
    assert out.rc == 0, out.output
    assert members() == (TWO, TWO)
    # The node left is reset and stopped: no client is served by a node of no cluster.
    assert (
        host("rabbit-peer2").run("systemctl is-active rabbitmq-server").stdout.strip() == "inactive"
    )
    back = run_playbook()
    assert back.rc == 0, back.output
    assert members() == (NODES, NODES)
    # Its quorum queue replicas come back with it.
    assert quorum_members("email") == NODES
    # The role's wipe of a member: struck off first, it rejoins as a new node when it starts.
    wiped = run_playbook("wipe.yml", extra_vars={"celerystack_wipe_confirm": "rabbit-peer1"})
    assert wiped.rc == 0, wiped.output
    assert members() == (NODES, NODES)
    assert members("rabbit-peer1") == (NODES, NODES)
    # The next converge gives the wiped node its quorum queue replica again; then nothing to do.
    grown = run_playbook()
    assert grown.rc == 0, grown.output
    assert quorum_members("email") == NODES
    again = run_playbook()
    assert again.rc == 0, again.output
    assert all(recap["changed"] == 0 for recap in again.recap.values()), again.output
