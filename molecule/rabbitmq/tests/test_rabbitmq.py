"""Behaviour of the converged brokers, seen from a client host and from the brokers themselves."""

from __future__ import annotations

import json
import re
import shlex
import uuid

import pytest
import testinfra
from celerystack_testlib import run_playbook, vault_values
from conftest import CA, CELERY, http_status, probe

SECRETS = vault_values()
JOURNAL_UNITS = ["rabbitmq-server"]
testinfra_hosts = ["rabbit-plain", "rabbit-tls"]


def host(name):
    return testinfra.get_host(f"podman://{name}")


def listeners(name):
    return sorted(
        line.split()[3]
        for line in host(name).check_output("ss -Hltn").splitlines()
        if not line.split()[3].endswith((":22", ":4369", ":25672"))
    )


def address_of(name):
    return host(name).check_output("hostname -I").split()[0]


def test_listeners_are_exactly_the_configured_ones():
    plain, tls = address_of("rabbit-plain"), address_of("rabbit-tls")
    # Management and the Prometheus metrics on the management address only.
    assert listeners("rabbit-plain") == sorted(
        ["127.0.0.1:5672", f"{plain}:5672", "127.0.0.1:15672", "127.0.0.1:15692"]
    )
    # TLS only: no plain AMQP, management over HTTPS on the network address.
    assert listeners("rabbit-tls") == sorted(
        ["127.0.0.1:5671", f"{tls}:5671", f"{tls}:15671", f"{tls}:15692"]
    )


def test_guest_cannot_log_in_over_amqp_or_http():
    assert "ACCESS_REFUSED" in probe("rabbit-plain:5672", "/", "login", user=("guest", "guest"))
    assert http_status("rabbit-plain", "http://127.0.0.1:15672/api/whoami", "guest:guest") == "401"


def test_app_user_works_in_its_vhost_and_is_refused_in_another():
    assert probe("rabbit-plain:5672", "/celery", "login") == "OK"
    refused = probe("rabbit-plain:5672", "/other", "login")
    assert "NOT_ALLOWED" in refused and "/other" in refused


def test_another_application_has_its_own_vhost_and_each_user_is_refused_in_the_other():
    # shop (celerystack_applications): its queues in its vhost, its user there only.
    shop = ("celery-shop", SECRETS["vault_rabbitmq_shop_password"])
    assert probe("rabbit-plain:5672", "/shop", "login", user=shop) == "OK"
    for vhost, user in (("/celery", shop), ("/shop", CELERY)):
        refused = probe("rabbit-plain:5672", vhost, "login", user=user)
        assert "NOT_ALLOWED" in refused and vhost in refused, (user[0], refused)
    listed = host("rabbit-plain").check_output(
        "rabbitmqctl --quiet list_queues --vhost /shop name --formatter json"
    )
    assert sorted(queue["name"] for queue in json.loads(listed)) == ["default", "orders"]


def test_wrong_password_is_refused():
    assert "ACCESS_REFUSED" in probe("rabbit-plain:5672", "/celery", "login", user=("celery", "x"))


@pytest.mark.parametrize("broker", ["rabbit-plain:5672", "rabbit-tls:5671"])
def test_logstash_event_routes_to_the_logstash_queue(broker):
    tls = CA if broker.endswith(":5671") else None
    event = json.dumps({"id": str(uuid.uuid4()), "message": "hello"})
    assert probe(broker, "/celery", "publish", "logstash", "logstash", event, tls=tls) == "OK"
    assert probe(broker, "/celery", "get", "logstash", tls=tls) == event
    # Another routing key does not reach the queue.
    probe(broker, "/celery", "publish", "logstash", "other", event, tls=tls)
    assert probe(broker, "/celery", "get", "logstash", tls=tls) == "EMPTY"


def test_amqps_verifies_the_server_against_the_ca():
    assert probe("rabbit-tls:5671", "/celery", "login", tls=CA) == "OK"
    # The host's own trust store does not hold the test CA: verification must fail.
    untrusted = probe("rabbit-tls:5671", "/celery", "login", tls="system")
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted
    assert "ConnectionRefused" in probe("rabbit-tls:5672", "/celery", "login")


def list_queues(vhost):
    listed = json.loads(
        host("rabbit-plain").check_output(
            f"rabbitmqctl -q list_queues -p {vhost} name type arguments --formatter json"
        )
    )
    return {q["name"]: (q["type"], {a[0]: a[2] for a in q["arguments"]}) for q in listed}


def test_queue_types_and_arguments_are_as_declared():
    assert list_queues("/other")["email"] == ("quorum", {"x-queue-type": "quorum"})
    queues = list_queues("/celery")
    assert queues["logstash"] == (
        "classic",
        {"x-queue-type": "classic", "x-dead-letter-exchange": "logstash.dlx"},
    )


def test_secret_files_are_closed_to_other_users(host):
    for path, mode, owner in [
        ("/var/lib/rabbitmq/.erlang.cookie", 0o400, "rabbitmq"),
        ("/etc/rabbitmq/definitions.json", 0o640, "root"),
    ]:
        f = host.file(path)
        assert (f.mode, f.user) == (mode, owner), path
        assert host.run(f"runuser -u nobody -- cat {path}").rc != 0, path
    definitions = host.file("/etc/rabbitmq/definitions.json").content_string
    assert all(secret not in definitions for secret in SECRETS.values())


BROKERS = {"rabbit-plain": ("rabbit-plain:5672", None), "rabbit-tls": ("rabbit-tls:5671", CA)}


def test_a_wiped_node_comes_back_with_users_queues_and_bindings(host):
    """Stop, wipe the store, start: no converge in between. Then a converge has nothing to do."""
    name = host.backend.get_hostname()
    host.check_output("systemctl stop rabbitmq-server")
    host.check_output("rm -rf /var/lib/rabbitmq/mnesia")
    host.check_output("systemctl start rabbitmq-server")
    bindings = host.check_output("rabbitmqctl -q list_bindings -p /celery source_name routing_key")
    assert "logstash\tlogstash" in bindings
    users = host.check_output("rabbitmqctl -q list_users")
    assert "celery" in users and "guest" not in users
    policies = host.check_output("rabbitmqctl -q list_policies -p /celery")
    assert "celery-transient-queues-expire" in policies
    broker, tls = BROKERS[name]
    event = '{"id": "after-wipe"}'
    assert probe(broker, "/celery", "publish", "logstash", "logstash", event, tls=tls) == "OK"
    assert probe(broker, "/celery", "get", "logstash", tls=tls) == event
    run = run_playbook(limit=name)
    assert run.rc == 0, run.output
    if name == "rabbit-plain":
        # A cluster's member wiped by hand started alone while the others still list it: the
        # converge strikes it off and joins it again (the role's wipe avoids that: it strikes the
        # node off first, tests/test_cluster.py).
        status = json.loads(host.check_output("rabbitmqctl -q cluster_status --formatter json"))
        assert len(status["running_nodes"]) == 3, status
        run = run_playbook(limit=name)
        assert run.rc == 0, run.output
    assert run.recap[name]["changed"] == 0, run.output


def test_prometheus_metrics_count_every_queue_for_another_host():
    tls = address_of("rabbit-tls")
    fetch = (
        "import sys, urllib.request\n"
        "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
    )
    metrics = host("client").check_output(
        shlex.join(["python3", "-c", fetch, f"http://{tls}:15692/metrics/per-object"])
    )
    served = {
        (m["vhost"], m["queue"])
        for m in (
            dict(re.findall(r'(\w+)="([^"]*)"', line))
            for line in metrics.splitlines()
            if line.startswith("rabbitmq_queue_messages_ready{")
        )
    }
    broker = host("rabbit-tls")
    vhosts = [
        v["name"]
        for v in json.loads(broker.check_output("rabbitmqctl -q list_vhosts name --formatter json"))
    ]
    listed = {
        (vhost, q["name"])
        for vhost in vhosts
        for q in json.loads(
            broker.check_output(
                f"rabbitmqctl -q list_queues -p {shlex.quote(vhost)} name --formatter json"
            )
        )
    }
    assert listed and served == listed
