"""The production layout with three brokers: one RabbitMQ cluster (inventories/prod makes the
`brokers` group one), every queue a quorum queue with a replica on each node, the application
on every node (failover). A steady stream of Logstash events goes on while the node the
workers are on is killed, and again through a rolling restart of every broker: every event
published is one row, the workers move to the nodes left, and countdown tasks sent before each
fault still run."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import testinfra
from celerystack_app_host import ran_at, send, start_stream, stream_result
from celerystack_testlib import run_playbook, wait_until

testinfra_hosts = ["app1"]
BROKERS = ["app-broker", "app-broker2", "app-broker3"]
NODES = sorted(f"rabbit@{name}" for name in BROKERS)
CELERY_QUEUES = ["default", "mail_data", "email"]
PLAYBOOKS = Path("../../playbooks")


def broker(name: str):
    return testinfra.get_host(f"podman://{name}")


def running_nodes(name: str) -> list[str]:
    status = json.loads(broker(name).check_output("rabbitmqctl -q cluster_status --formatter json"))
    return sorted(status["running_nodes"])


def queues() -> dict[str, dict]:
    """The /celery queues as the first node that answers counts them (one may be down)."""
    command = "rabbitmqctl -q list_queues -p /celery name type members consumers --formatter json"
    for name in BROKERS:
        listed = broker(name).run(command)
        if listed.rc == 0:
            return {q["name"]: q for q in json.loads(listed.stdout)}
    raise AssertionError("no broker answers")


def client_connections() -> dict[str, int]:
    """{broker: AMQP connections on its node}: the application host's (workers, beat, Flower),
    the only clients here."""
    count = "rabbitmqctl -q eval 'length(rabbit_networking:connections_local()).'"
    return {name: int(broker(name).check_output(count)) for name in BROKERS}


def every_queue_consumed() -> bool:
    found = queues()
    return all(found[q]["consumers"] >= 1 for q in [*CELERY_QUEUES, "logstash"])


def test_the_brokers_form_one_cluster_with_every_queue_on_every_node():
    for name in BROKERS:
        assert running_nodes(name) == NODES, name
    found = queues()
    for name in [*CELERY_QUEUES, "logstash", "logstash.dead", "celerystack.dead"]:
        assert found[name]["type"] == "quorum", name
        assert sorted(found[name]["members"]) == NODES, name
    # The application's connections are spread over the nodes (each process picks one).
    assert wait_until(lambda: sum(n > 0 for n in client_connections().values()) >= 2, 30)


def test_events_and_countdown_tasks_survive_the_workers_node_killed_with_sigkill():
    assert wait_until(every_queue_consumed, 60)
    marker = uuid.uuid4().hex[:8]
    sent = send(f"killed-{marker}", "countdown=20")
    start_stream("drill-cluster-kill", events=60, rate=4)
    time.sleep(5)
    # The node with most of the application's connections (its workers' too).
    connections = client_connections()
    killed = max(connections, key=connections.get)
    survivor = next(name for name in BROKERS if name != killed)
    broker(killed).check_output("systemctl kill --signal=SIGKILL rabbitmq-server")
    assert wait_until(lambda: f"rabbit@{killed}" not in running_nodes(survivor), 30)
    # The workers go on on the nodes left, before the killed one is back.
    assert wait_until(lambda: every_queue_consumed() or running_nodes(survivor) == NODES, 60)
    result = stream_result("drill-cluster-kill")
    assert (result["published"], result["stored"]) == (60, 60), result
    # The countdown task waited in the (replicated) delayed-delivery queues and ran.
    assert wait_until(lambda: ran_at(f"killed-{marker}") is not None, 60)
    assert ran_at(f"killed-{marker}") - sent >= 19
    # systemd starts the killed node again and it rejoins by itself.
    assert wait_until(lambda: running_nodes(survivor) == NODES, 120)
    assert wait_until(every_queue_consumed, 60)


def test_a_rolling_restart_of_every_broker_loses_no_event_and_no_countdown_task():
    assert wait_until(every_queue_consumed, 60)
    marker = uuid.uuid4().hex[:8]
    sent = send(f"rolling-{marker}", "countdown=30")
    # Longer than the restart of three nodes takes, slow enough for the rate-limited mail_data
    # worker to keep up (celery_app_mail_data_rate_limit).
    start_stream("drill-cluster-restart", events=200, rate=2)
    began = time.monotonic()
    restarted = run_playbook(PLAYBOOKS / "broker_restart.yml")
    restart_seconds = time.monotonic() - began
    assert restarted.rc == 0, restarted.output
    assert restarted.output.count("Put the node into maintenance") == len(BROKERS)
    result = stream_result("drill-cluster-restart")
    assert (result["published"], result["stored"]) == (200, 200), result
    # The stream went on for the whole restart.
    assert result["publish_seconds"] > restart_seconds, (result, restart_seconds)
    assert wait_until(lambda: ran_at(f"rolling-{marker}") is not None, 90)
    assert ran_at(f"rolling-{marker}") - sent >= 29
    assert running_nodes("app-broker") == NODES
    assert wait_until(every_queue_consumed, 60)
