"""The worker services: each queue's tasks run in that queue's service only, Logstash events
become exactly one row each, malformed ones are dead-lettered with the reason, the units are
hardened and their secrets reach no other user."""

from __future__ import annotations

import json
import shlex
import uuid

import pytest
from celerystack_app_host import app_host, completion, django_shell, main_pid, started_long_running
from celerystack_testlib import flat_secrets, run_playbook, vault_values, wait_until

JOURNAL_UNITS = ["celery-worker-default", "celery-worker-mail_data", "celery-worker-logstash"]
CELERY_QUEUES = ["default", "mail_data", "email"]
UNITS = [
    "celery-worker-default",
    "celery-worker-email",
    "celery-worker-logstash",
    "celery-worker-mail_data",
]
# Every Celery service of the host: the workers, the one beat and Flower share one drop-in.
SERVICES = [*UNITS, "celery-beat", "celery-flower"]
SECRETS = vault_values()
# Each secret as the string that must never show (a PEM key by one line of its body).
FLAT = flat_secrets()
testinfra_hosts = ["app1"]


PUBLISH = """
import sys
from celerystack_app.celery import app
with app.connection_for_write() as conn:
    conn.Producer().publish(
        sys.stdin.readline().encode(), exchange="logstash", routing_key="logstash",
        content_type="application/json", content_encoding="binary", serializer=None, retry=True,
    )
"""


def publish_raw(body: str) -> None:
    """Publish a raw event to the logstash exchange as Logstash does (JSON, no Celery envelope)."""
    result = django_shell(PUBLISH.replace("sys.stdin.readline()", repr(body)))
    assert result.rc == 0, result.stderr


def rows(event_id: str, *, prefix: bool = False) -> int:
    """Stored rows of one event, or of every event whose id starts with `event_id`."""
    lookup = "event_id__startswith" if prefix else "event_id"
    result = django_shell(
        "from celerystack_app.mail.models import MailData\n"
        f"print('ROWS', MailData.objects.filter({lookup}={event_id!r}).count())"
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("ROWS"))
    return int(line.split()[1])


def worker_log(unit: str) -> str:
    return app_host().run(f"cat /var/log/celery/{unit}.log").stdout


def test_every_unit_runs_and_the_target_groups_them():
    host = app_host()
    for unit in UNITS:
        assert host.service(unit).is_running, unit
    assert host.check_output("systemctl is-active celery.target") == "active"


@pytest.mark.parametrize("queue", CELERY_QUEUES)
def test_a_task_sent_to_a_queue_runs_in_that_queues_service_only(queue):
    marker = f"to-{queue}-{uuid.uuid4().hex[:8]}"
    sent = django_shell(
        "from celerystack_app.mail.tasks import heartbeat\n"
        f"print('ID', heartbeat.apply_async(kwargs={{'name': {marker!r}}}, queue={queue!r}).id)"
    )
    task_id = next(line for line in sent.stdout.splitlines() if line.startswith("ID")).split()[1]
    unit = f"celery-worker-{queue}"
    assert wait_until(lambda: f"[{task_id}] succeeded" in worker_log(unit), 60), worker_log(unit)
    others = [u for u in UNITS if u != unit and task_id in worker_log(u)]
    assert others == []


def stored_tasks() -> int:
    """How many store_mail_data tasks the mail_data service has finished."""
    log = worker_log("celery-worker-mail_data")
    return sum("store_mail_data[" in line and "succeeded" in line for line in log.splitlines())


def test_a_logstash_event_becomes_exactly_one_row_even_when_published_twice():
    event_id = f"evt-{uuid.uuid4().hex[:12]}"
    event = json.dumps({"id": event_id, "from": "a@example.org", "subject": "hello"})
    publish_raw(event)
    assert wait_until(lambda: rows(event_id) == 1, 60)
    done = stored_tasks()
    publish_raw(event)
    # The second copy becomes a second task, which finds the row and stores nothing.
    assert wait_until(lambda: stored_tasks() > done, 60)
    assert rows(event_id) == 1


# From the application host, as Flower reads the management API: HTTPS on 15671, verified
# against the inventory's CA.
DEAD_LETTERS = """
import base64, json, ssl, sys, urllib.request
url = "https://app-broker:15671/api/queues/%2Fcelery/logstash.dead/get"
body = {"count": 10, "ackmode": "ack_requeue_false", "encoding": "auto"}
auth = "Basic " + base64.b64encode(sys.stdin.readline().strip().encode()).decode()
headers = {"Content-Type": "application/json", "Authorization": auth}
request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
context = ssl.create_default_context(cafile="/etc/celerystack/tls/broker-ca.crt")
print(json.dumps(json.load(urllib.request.urlopen(request, context=context))))
"""


def test_a_malformed_event_is_dead_lettered_with_its_reason():
    host = app_host()
    publish_raw("{not json")
    credentials = f"admin:{SECRETS['vault_rabbitmq_admin_password']}"
    messages = []

    def dead_lettered():
        out = host.check_output(
            f"printf %s {shlex.quote(credentials)} | python3 -c {shlex.quote(DEAD_LETTERS)}"
        )
        messages.extend(json.loads(out))
        return any(m["payload"] == "{not json" for m in messages)

    assert wait_until(dead_lettered, 60)
    message = next(m for m in messages if m["payload"] == "{not json")
    assert message["properties"]["headers"]["x-celerystack-reason"].startswith("body is not JSON")


def test_units_are_hardened_to_the_target_exposure(capsys):
    host = app_host()
    for unit in SERVICES:
        line = host.check_output(f"systemd-analyze security {unit}.service --no-pager | tail -1")
        exposure = float(line.split("level for")[1].split(":")[1].split()[0])
        with capsys.disabled():  # the figures belong in the test output
            print(f"\nsystemd-analyze security: {line.strip()}")
        assert exposure <= 3.0, line


def test_every_override_is_a_link_to_one_root_owned_file():
    host = app_host()
    targets = {
        host.file(f"/etc/systemd/system/{u}.service.d/override.conf").linked_to for u in SERVICES
    }
    assert targets == {"/etc/celerystack/systemd/service.conf"}
    shared = host.file("/etc/celerystack/systemd/service.conf")
    assert (shared.user, shared.group, shared.mode) == ("root", "root", 0o644)
    assert not [n for n, v in FLAT.items() if v in shared.content_string]


@pytest.mark.parametrize("unit", ["celery-worker-default", "celery-beat", "celery-flower"])
def test_no_other_local_user_can_read_a_secret_by_any_route(unit):
    host = app_host()
    pid = host.check_output(f"systemctl show -P MainPID {unit}")
    routes = {
        "systemctl show": f"systemctl show {unit}",
        "environ": f"cat /proc/{pid}/environ",
        "cmdline": f"cat /proc/{pid}/cmdline",
        "secrets file": "cat /etc/celerystack/secrets",
        "Flower's logins": "cat /etc/celerystack/flower-secrets.json",
        "credentials": f"cat /run/credentials/{unit}.service/secrets",
        "worker log": "cat /var/log/celery/celery-worker-default.log",
        "journal": f"journalctl -u {unit} --no-pager",
    }
    for route, command in routes.items():
        seen = host.run(f"runuser -u nobody -- {command}").stdout
        leaked = [name for name, value in FLAT.items() if value in seen]
        assert not leaked, f"{route}: {leaked}"
    # Root sees the credentials (so the test would notice a secret that never arrived).
    assert host.file(f"/run/credentials/{unit}.service/secrets").exists


def test_a_worker_child_killed_mid_task_gets_the_task_again_and_it_completes():
    host = app_host()
    key = started_long_running(20)
    main = main_pid("celery-worker-default")
    children = host.check_output(f"pgrep -P {main}").split()
    assert children
    host.check_output(f"kill -9 {' '.join(children)}")
    # acks_late + reject_on_worker_lost: the message goes back to the queue, runs again, and the
    # idempotent task completes once.
    assert wait_until(lambda: completion(key) == (2, True), 120), completion(key)
    assert main_pid("celery-worker-default") == main


def test_a_restart_during_a_task_is_a_warm_shutdown_and_the_task_completes():
    host = app_host()
    key = started_long_running(15)
    before = main_pid("celery-worker-default")
    since = host.check_output("date +%s")
    host.check_output("systemctl restart celery-worker-default")
    # The stop waited for the running task: when `systemctl restart` returns, the task has
    # finished in its first attempt (a cold stop would have left it unfinished, to run again).
    assert completion(key) == (1, True)
    journal = host.check_output(f"journalctl -u celery-worker-default --since @{since}")
    assert "SIGKILL" not in journal and "Killing" not in journal, journal
    assert host.service("celery-worker-default").is_running
    assert main_pid("celery-worker-default") != before


@pytest.mark.last
def test_a_queue_removed_from_the_variable_loses_its_service_and_its_monit_rule():
    host = app_host()
    run = run_playbook(
        "app-services.yml",
        extra_vars={"celery_worker_queues": ["default", "mail_data", "logstash"]},
        limit="app1",
    )
    try:
        assert run.rc == 0, run.output
        assert not host.file("/etc/systemd/system/celery-worker-email.service").exists
        assert host.run("systemctl is-active celery-worker-email").stdout.strip() != "active"
        assert not host.file("/etc/monit/conf.d/celerystack-celery-worker-email.conf").exists
        # monit re-reads its rules asynchronously after the reload.
        assert wait_until(lambda: "celery-worker-email" not in host.run("monit summary").stdout, 30)
    finally:
        restored = run_playbook("app-services.yml", limit="app1")
    assert restored.rc == 0, restored.output
    assert host.service("celery-worker-email").is_running
    assert host.file("/etc/monit/conf.d/celerystack-celery-worker-email.conf").exists
