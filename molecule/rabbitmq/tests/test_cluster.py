"""A RabbitMQ cluster from the inventory (rabbitmq_cluster_hosts): three plain brokers. It forms
in one converge; a quorum queue has a replica on every node and loses nothing when a node is
killed, nor does a producer connected as the application connects (it moves to another node); a
node taken out of the inventory leaves on the next converge, one put back joins, and
one wiped by the role rejoins. The single TLS node beside it stays a cluster of one (the
default)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import testinfra
import yaml
from celerystack_testlib import run_playbook, vault_values, wait_until
from conftest import probe

NODES = sorted(["rabbit@rabbit-plain", "rabbit@rabbit-peer1", "rabbit@rabbit-peer2"])
# Without rabbit-peer2.
TWO = sorted(["rabbit@rabbit-plain", "rabbit@rabbit-peer1"])
OTHER = ("other", vault_values()["vault_rabbitmq_other_password"])
REPO = Path(__file__).resolve().parents[3]
# The application's own interpreter (harness/bootstrap builds it on the controller).
APP_PYTHON = Path(os.environ["CS_APP_VENV"]) / "bin" / "python"
APP_CLIENT = REPO / "molecule" / "rabbitmq" / "files" / "app_client.py"


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


def node_addresses() -> dict[str, str]:
    """{address: host name} of the cluster's nodes, as the controller reaches them."""
    names = [node.split("@")[1] for node in NODES]
    return {host(name).check_output("hostname -I").split()[0]: name for name in names}


def app_client(addresses, *args) -> subprocess.Popen:
    """files/app_client.py, connected as the application connects: every node in its URL."""
    environment = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO / "app" / "src"),
        "CELERYSTACK_BROKER_HOST": ",".join(addresses),
        "CELERYSTACK_BROKER_USER": OTHER[0],
        "CELERYSTACK_BROKER_PASSWORD": OTHER[1],
        "CELERYSTACK_BROKER_VHOST": "/other",
    }
    return subprocess.Popen(
        [APP_PYTHON, str(APP_CLIENT), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def main_pid(name: str) -> str:
    return host(name).check_output("systemctl show -P MainPID rabbitmq-server")


def test_a_quorum_queue_and_its_clients_lose_nothing_when_a_node_is_killed():
    # Declared from the topology once the nodes formed the cluster: a replica on each node.
    assert quorum_members("email") == NODES
    before = int(probe("rabbit-peer1:5672", "/other", "count", "email", user=OTHER))
    # 50 messages, then the node the producer is on is killed, then 50 more.
    names = node_addresses()
    client = app_client(names, "email", "50", "50")
    try:
        first = client.stdout.readline().split()
        assert first[:1] == ["on"], (first, client.stderr.read() if client.poll() else "")
        killed = names[first[1]]
        survivor = next(name for name in names.values() if name != killed)
        pid = main_pid(killed)
        host(killed).check_output("systemctl kill --signal=SIGKILL rabbitmq-server")
        assert wait_until(lambda: f"rabbit@{killed}" not in members(survivor)[1], 30)
        out, err = client.communicate("go\n", timeout=180)
    finally:
        if client.poll() is None:
            client.kill()
    # The producer moved to another node by itself, and every message is confirmed there.
    assert client.returncode == 0, err
    assert out.split()[:2] == ["sent", "100"] and out.split()[-1] != first[1], out
    counted = probe(f"{survivor}:5672", "/other", "count", "email", user=OTHER)
    assert counted == str(before + 100), counted
    # systemd starts the node again (Restart=on-failure), and it rejoins by itself.
    assert wait_until(lambda: members(survivor)[1] == NODES, 120), members(survivor)
    assert main_pid(killed) != pid
    # All of them, through the node that was killed, once it takes connections again.
    assert wait_until(lambda: probe(f"{killed}:5672", "/other", "login", user=OTHER) == "OK", 60)
    taken = probe(f"{killed}:5672", "/other", "drain", "email", user=OTHER)
    assert taken == str(before + 100), taken


def test_a_rolling_restart_under_a_stream_of_publishes_loses_nothing():
    names = node_addresses()
    before = int(probe("rabbit-peer1:5672", "/other", "count", "email", user=OTHER))
    pids = {name: main_pid(name) for name in names.values()}
    client = app_client(names, "email", "stream")
    try:
        started = client.stdout.readline()
        assert started.startswith("streaming on"), (started, client.stderr.read())
        restarted = run_playbook(REPO / "playbooks" / "broker_restart.yml")
        out, err = client.communicate("stop\n", timeout=180)
    finally:
        if client.poll() is None:
            client.kill()
    assert restarted.rc == 0, restarted.output
    # Each node went into maintenance and restarted, one at a time, and runs in the cluster.
    assert restarted.output.count("Put the node into maintenance") == len(names), restarted.output
    assert all(main_pid(name) != pid for name, pid in pids.items()), pids
    assert members() == (NODES, NODES)
    # Every message the producer had confirmed is in the queue: none lost across three restarts.
    # A publish whose confirm went down with its connection is sent again on the next node
    # (at least once), so each restart may add one copy; never more than one per restart (CI on
    # 240c7a6 counted 2599 of 2598 sent).
    assert client.returncode == 0, err
    sent = int(out.split()[1])
    assert sent > 0, out
    counted = int(probe("rabbit-peer1:5672", "/other", "count", "email", user=OTHER)) - before
    assert sent <= counted <= sent + len(names), (counted, sent, out)
    taken = int(probe("rabbit-peer2:5672", "/other", "drain", "email", user=OTHER))
    assert taken == before + counted, taken


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
