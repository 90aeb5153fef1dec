"""Quorum Celery queues (prod's topology makes every queue one): countdown and ETA tasks wait in the
broker through Celery's native delayed delivery (celery_delayed_* queues the workers declare
themselves), not inside a worker, and run on time; a task given back more often than the
delivery limit goes to celerystack.dead instead of coming back for ever or being dropped."""

from __future__ import annotations

import json
import shlex
import uuid

import testinfra
from celerystack_app_host import app_host, ran_at, send
from celerystack_testlib import inventory_vars, vault_values, wait_until
from test_operations import stop_unwatched

testinfra_hosts = ["app1"]
# Longer than a Django shell takes to start (each send is one), so the test sees them waiting.
COUNTDOWN = 20
TOPOLOGY = inventory_vars()["celerystack_topology"]

# The management API from the application host, as Flower reaches it (HTTPS on 15671, verified
# against the inventory's CA): argv is METHOD PATH [JSON BODY], the login comes on stdin.
API = """
import base64, json, ssl, sys, urllib.request
method, path = sys.argv[1:3]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
auth = "Basic " + base64.b64encode(sys.stdin.readline().strip().encode()).decode()
headers = {"Content-Type": "application/json", "Authorization": auth}
request = urllib.request.Request(
    "https://app-broker:15671/api/" + path, data=body, headers=headers, method=method
)
context = ssl.create_default_context(cafile="/etc/celerystack/tls/broker-ca.crt")
print(json.dumps(json.load(urllib.request.urlopen(request, context=context))))
"""


def api(method: str, path: str, body: dict | None = None):
    credentials = f"admin:{vault_values()['vault_rabbitmq_admin_password']}"
    argv = [method, path] + ([json.dumps(body)] if body is not None else [])
    out = app_host().check_output(
        f"printf %s {shlex.quote(credentials)} | python3 -c {shlex.quote(API)} {shlex.join(argv)}"
    )
    return json.loads(out)


def queues() -> dict[str, dict]:
    """The /celery vhost's queues as the broker itself counts them (live, not the API's)."""
    out = testinfra.get_host("podman://app-broker").check_output(
        "rabbitmqctl -q list_queues -p /celery name type messages policy --formatter json"
    )
    return {q["name"]: q for q in json.loads(out)}


def unacknowledged(queue: str) -> int:
    out = testinfra.get_host("podman://app-broker").check_output(
        "rabbitmqctl -q list_queues -p /celery name messages_unacknowledged --formatter json"
    )
    return next(q["messages_unacknowledged"] for q in json.loads(out) if q["name"] == queue)


def delayed() -> int:
    """Messages waiting in Celery's delayed-delivery queues."""
    return sum(q["messages"] for name, q in queues().items() if name.startswith("celery_delayed_"))


def test_the_quorum_celery_queue_has_the_platforms_delivery_limit_and_topic_exchanges():
    found = queues()
    for queue in ("default", "mail_data", "email"):
        assert (found[queue]["type"], found[queue]["policy"]) == (
            "quorum",
            "celerystack-celery-quorum-queues",
        ), queue
    # A raw queue is not a Celery queue: its redeliveries are the event consumer's business.
    assert found["logstash"]["type"] == "quorum" and not found["logstash"]["policy"]
    # The workers declared Celery's delayed-delivery queues (28 levels, each a quorum queue).
    levels = [q for name, q in found.items() if name.startswith("celery_delayed_")]
    assert len(levels) == 28 and {q["type"] for q in levels} == {"quorum"}
    exchanges = {e["name"]: e["type"] for e in api("GET", "exchanges/%2Fcelery")}
    assert {exchanges[q] for q in ("default", "mail_data", "email")} == {"topic"}


def test_countdown_and_eta_tasks_wait_in_the_broker_and_run_on_time():
    marker = uuid.uuid4().hex[:8]
    # Each waits in the broker (in a worker it would be held unacknowledged instead); a quorum
    # queue's figures are its last tick's (every second).
    by_countdown = send(f"countdown-{marker}", f"countdown={COUNTDOWN}")
    by_eta = send(
        f"eta-{marker}", f"eta=now + datetime.timedelta(seconds={COUNTDOWN}), countdown=None"
    )
    assert wait_until(lambda: delayed() >= 2, 5), delayed()
    # No worker holds them: the heartbeat's queue has nothing unacknowledged.
    assert unacknowledged("default") == 0
    for name, sent in ((f"countdown-{marker}", by_countdown), (f"eta-{marker}", by_eta)):
        assert wait_until(lambda name=name: ran_at(name) is not None, COUNTDOWN + 60), name
        late = ran_at(name) - sent
        # Not before its time, and within a few seconds of it (the last delay level is 1 s).
        assert COUNTDOWN - 1 <= late <= COUNTDOWN + 10, (name, late)
    assert wait_until(lambda: delayed() == 0, COUNTDOWN + 10)


def test_a_task_given_back_past_the_delivery_limit_is_dead_lettered_not_dropped():
    host = app_host()
    limit = int(TOPOLOGY.get("delivery_limit", 20))
    body = f"poison-{uuid.uuid4().hex[:8]}"
    stop_unwatched(host, "celery-worker-mail_data")
    try:
        api(
            "POST",
            "exchanges/%2Fcelery/mail_data/publish",
            {
                "properties": {},
                "routing_key": "mail_data",
                "payload": body,
                "payload_encoding": "string",
            },
        )
        # Each get given back (requeued) is one more delivery, as a worker dying on the task is.
        given_back = 0
        for _attempt in range(limit + 5):
            got = api(
                "POST",
                "queues/%2Fcelery/mail_data/get",
                {"count": 1, "ackmode": "reject_requeue_true", "encoding": "auto"},
            )
            if not got:
                break
            assert got[0]["payload"] == body
            given_back += 1
        assert given_back == limit + 1, given_back
        dead = api(
            "POST",
            "queues/%2Fcelery/celerystack.dead/get",
            {"count": 10, "ackmode": "ack_requeue_false", "encoding": "auto"},
        )
        assert [m["payload"] for m in dead] == [body]
        assert dead[0]["properties"]["headers"]["x-first-death-reason"] == "delivery_limit"
    finally:
        host.check_output("systemctl start celery-worker-mail_data")
        host.check_output("monit monitor celery-worker-mail_data")
    assert wait_until(lambda: queues()["mail_data"]["messages"] == 0, 10)
    # The worker is back, as the management API counts it too (queues.yml reads it).
    assert wait_until(lambda: api("GET", "queues/%2Fcelery/mail_data").get("consumers", 0) >= 1, 60)
