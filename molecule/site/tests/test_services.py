"""The one beat, Flower and monit on the application host: beat refuses a second host, Flower
answers only with credentials and sees the workers and the queues, monit watches every service
and restarts a runaway beat, and gives up on one caught in a restart loop."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import testinfra
from celerystack_app_host import app_host, flower
from celerystack_testlib import inventory_vars, run_playbook, wait_until

testinfra_hosts = ["app1"]
FLOWER_PASSWORD = inventory_vars()["vault_flower_password"]
WORKER_NODES = {f"{queue}@app1" for queue in ("default", "email", "logstash", "mail_data")}
WATCHED = [
    "celery-worker-default",
    "celery-worker-email",
    "celery-worker-logstash",
    "celery-worker-mail_data",
    "celery-beat",
    "celery-flower",
]


def monit_status(service: str) -> str:
    return app_host().run(f"monit status {service}").stdout


def test_beat_runs_once_with_the_database_scheduler():
    host = app_host()
    assert host.service("celery-beat").is_running
    assert host.service("celery-beat").is_enabled
    beats = host.check_output("pgrep -u celerystack -fc 'celery -A celerystack_app beat'")
    assert beats == "1"
    assert "DatabaseScheduler" in host.check_output("journalctl -u celery-beat --no-pager")


def test_the_play_refuses_a_beat_group_of_more_than_one_host():
    host = app_host()
    unit = host.file("/etc/systemd/system/celery-beat.service").content_string
    run = run_playbook(
        "../../playbooks/beat.yml",
        extra_vars={"celery_beat_group": "all", "celery_beat_loglevel": "DEBUG"},
        limit="app1",
    )
    assert run.rc != 0
    assert "celery_beat_group 'all' must hold exactly one host" in run.output, run.output
    assert run.recap["app1"]["changed"] == 0
    assert host.file("/etc/systemd/system/celery-beat.service").content_string == unit


SERVICE_BAD_INPUTS = [
    ("flower.yml", {"flower_basic_auth_password": "short"}, "flower_basic_auth_password"),
    ("flower.yml", {"flower_port": 70000}, "flower_port"),
    ("flower.yml", {"flower_broker_api_url": "rabbit:15672"}, "flower_broker_api_url"),
    ("monit.yml", {"monit_beat_cpu_limit": "lots"}, "monit_beat_cpu_limit"),
    ("monit.yml", {"monit_beat_memory_limit": "512 parsecs"}, "monit_beat_memory_limit"),
    ("monit.yml", {"monit_cycle": 1}, "monit_cycle"),
    # A full disk never alerts; an alert at RabbitMQ's own limit comes as publishers are blocked.
    ("monit.yml", {"monit_disk_usage_limit": 100}, "monit_disk_usage_limit"),
    ("monit.yml", {"monit_disk_broker_factor": 1}, "monit_disk_broker_factor"),
    ("beat.yml", {"celery_beat_max_interval": 0}, "celery_beat_max_interval"),
]


@pytest.mark.parametrize(
    ("playbook", "bad", "variable"), SERVICE_BAD_INPUTS, ids=[c[2] for c in SERVICE_BAD_INPUTS]
)
def test_bad_service_input_fails_before_any_change(playbook, bad, variable):
    host = app_host()
    watched = ["/etc/monit/monitrc", "/etc/systemd/system/celery-flower.service"]
    before = {path: host.file(path).content_string for path in watched}
    run = run_playbook(f"../../playbooks/{playbook}", extra_vars=bad, limit="app1")
    assert run.rc != 0
    assert variable in run.output, run.output
    assert run.recap["app1"]["changed"] == 0, run.output
    assert {path: host.file(path).content_string for path in watched} == before


@pytest.mark.parametrize("path", ["/", "/workers", "/broker", "/api/workers", "/api/queues/length"])
def test_flower_refuses_every_page_without_credentials(path):
    assert flower(path)[0] == 401
    assert flower(path, "not-the-password")[0] == 401


def test_only_flowers_probes_answer_without_credentials():
    # Flower keeps /healthcheck (load balancers) and /metrics (Prometheus) open by design; they
    # show counts per task name and worker, no task arguments or results (docs/operations.md).
    assert flower("/healthcheck")[0] == 200
    status, body = flower("/metrics")
    assert status == 200
    assert "python_info" in body, body[:300]


def test_flower_lists_the_workers_with_credentials():
    def listed():
        status, body = flower("/api/workers?refresh=1", FLOWER_PASSWORD)
        return status == 200 and set(json.loads(body)) >= WORKER_NODES

    assert wait_until(listed, 60), flower("/api/workers?refresh=1", FLOWER_PASSWORD)


def test_flower_reads_queue_lengths_from_the_management_api():
    status, body = flower("/api/queues/length", FLOWER_PASSWORD)
    assert status == 200, body
    queues = {q["name"]: q["messages"] for q in json.loads(body)["active_queues"]}
    assert {"default", "mail_data", "email"} <= set(queues), queues


def test_monit_listens_on_localhost_only_and_wants_a_login():
    host = app_host()
    listeners = host.check_output("ss -Htlnp | grep monit | awk '{print $4}'").split()
    assert listeners == ["127.0.0.1:2812"]
    # Another local user reaches the port but not monit: the interface wants the login.
    probe = (
        "import urllib.error, urllib.request\n"
        "try:\n    urllib.request.urlopen('http://127.0.0.1:2812/')\n"
        "except urllib.error.HTTPError as error:\n    print(error.code)\n"
    )
    seen = host.run(f"runuser -u nobody -- python3 -c {shlex.quote(probe)}")
    assert seen.stdout.strip() == "401", seen.stdout + seen.stderr
    assert host.file("/etc/monit/monitrc").mode == 0o600


def test_monit_watches_every_service_of_the_host():
    host = app_host()
    rules = host.check_output("ls /etc/monit/conf.d").split()
    assert sorted(rules) == sorted(f"celerystack-{unit}.conf" for unit in [*WATCHED, "disk-logs"])

    def all_ok():
        summary = host.run("monit summary").stdout
        return all(f"{unit}" in summary for unit in WATCHED) and summary.count(" OK ") >= len(
            WATCHED
        )

    assert wait_until(all_ok, 60), host.run("monit summary").stdout
    for unit in WATCHED:
        assert re.search(r"monitoring status\s+Monitored", monit_status(unit)), unit


# Each host's file systems that fill up: its logs, and the store it runs.
DISKS = {
    "app1": ["disk-logs"],
    "app-broker": ["disk-logs", "disk-rabbitmq"],
    "app-broker2": ["disk-logs", "disk-rabbitmq"],
    "app-broker3": ["disk-logs", "disk-rabbitmq"],
    "app-cache": ["disk-logs", "disk-redis"],
    "app-db": ["disk-logs", "disk-mariadb"],
}


@pytest.mark.parametrize("name", sorted(DISKS))
def test_monit_watches_the_disks_of_every_host(name):
    host = testinfra.get_host(f"podman://{name}")

    def statuses() -> dict[str, str]:
        lines = host.run("monit summary -B").stdout.splitlines()
        return {w[0]: " ".join(w[1:]) for w in map(str.split, lines) if w and w[0] in DISKS[name]}

    def all_ok() -> bool:
        seen = statuses()
        return set(seen) == set(DISKS[name]) and all(v.startswith("OK") for v in seen.values())

    assert wait_until(all_ok, 60), statuses()
    for disk in DISKS[name]:
        status = host.check_output(f"monit status {disk}")
        assert re.search(r"space free for non superuser\s+\S+", status), status


@pytest.mark.last
def test_monit_restarts_a_runaway_beat_and_gives_up_on_a_restart_loop():
    """Beat is made to exceed its memory limit (the limit is lowered below what beat uses); monit
    restarts it through systemd, and after the guard's number of restarts it stops trying."""
    host = app_host()
    pid = host.check_output("systemctl show -P MainPID celery-beat")
    lowered = run_playbook(
        "../../playbooks/monit.yml",
        extra_vars={"monit_beat_memory_limit": "1 MB", "monit_limit_cycles": 1},
        limit="app1",
    )
    try:
        assert lowered.rc == 0, lowered.output
        assert wait_until(
            lambda: host.check_output("systemctl show -P MainPID celery-beat") not in (pid, "0"),
            60,
        ), host.check_output("journalctl -u monit --no-pager | tail -20")
        assert "total mem amount" in host.check_output("journalctl -u monit --no-pager")
        # The restart-loop guard: beat keeps exceeding, monit gives up and unmonitors it.
        given_up = re.compile(r"monitoring status\s+Not monitored")
        assert wait_until(lambda: given_up.search(monit_status("celery-beat")), 180), monit_status(
            "celery-beat"
        )
        assert host.service("celery-beat").is_running  # systemd still runs it
    finally:
        restored = run_playbook("../../playbooks/monit.yml", limit="app1")
    assert restored.rc == 0, restored.output

    # What the person on call does once the cause is fixed. monit reloads asynchronously and keeps
    # "Not monitored" across a reload, so ask until the reloaded daemon has taken it.
    def watched_again():
        status = monit_status("celery-beat")
        if re.search(r"monitoring status\s+Not monitored", status):
            host.run("monit monitor celery-beat")
        return re.search(r"\n  status\s+OK", status)

    assert wait_until(watched_again, 90), monit_status("celery-beat")
