"""Day-2 operations on the live stack, as docs/operations.md gives them: queue health with limits,
stale locks freed only when their holder is gone, beat moved off a host in the same run, worker
logs rotated while the worker keeps writing, a round trip that survives a database restart."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import time
import uuid
from pathlib import Path

import pytest
import testinfra
import yaml
from celerystack_app_host import (
    ENV_FILE,
    MANAGE,
    app_host,
    completion,
    django_shell,
    main_pid,
    send_long_running,
    started_long_running,
)
from celerystack_testlib import inventory_vars, run_playbook, wait_until
from test_playbook import heartbeats
from test_workers import rows

testinfra_hosts = ["app1"]
PLAYBOOKS = Path("../../playbooks")
DECLARED = [q["name"] for q in inventory_vars()["celerystack_topology"]["queues"]]


def broker_queues() -> dict[str, tuple[int, int]]:
    """{queue: (ready, consumers)} of the /celery vhost, as the broker itself counts them."""
    broker = testinfra.get_host("podman://app-broker")
    out = broker.check_output(
        "rabbitmqctl -q list_queues -p /celery name messages_ready consumers --formatter json"
    )
    return {q["name"]: (q["messages_ready"], q["consumers"]) for q in json.loads(out)}


def stop_unwatched(host, unit: str) -> None:
    """Stop a service on purpose, as an outage would leave it: monit first, and only once monit
    reports it unwatched (it takes an unmonitor at its next cycle, and a cycle under way would
    start the service again)."""
    host.check_output(f"monit unmonitor {unit}")
    assert wait_until(lambda: "Not monitored" in host.run(f"monit status {unit}").stdout, 30)
    host.check_output(f"systemctl stop {unit}")


# --- Recovery --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "whom"),
    [
        ("celery-worker-logstash", "all"),
        ("celery-worker-logstash", "main"),
        ("celery-beat", "all"),
        ("celery-flower", "all"),
    ],
)
def test_a_service_killed_with_sigkill_runs_again_within_30_seconds(unit, whom):
    host = app_host()
    before = main_pid(unit)
    host.check_output(f"systemctl kill --signal=SIGKILL --kill-whom={whom} {unit}")

    def back() -> bool:
        state = host.run(f"systemctl is-active {unit}").stdout.strip()
        return state == "active" and main_pid(unit) not in ("0", before)

    assert wait_until(back, 30), host.run(f"systemctl status {unit}").stdout
    if unit.startswith("celery-worker-"):
        queue = unit.removeprefix("celery-worker-")
        assert wait_until(lambda: broker_queues()[queue][1] >= 1, 30), broker_queues()


# --- Queue health ------------------------------------------------------------------------------


def test_queue_health_reports_each_queue_as_the_broker_counts_it_and_fails_past_a_limit():
    # The dead-letter queues have no consumer (celerystack.dead must also be empty: no task went
    # past the delivery limit; other tests leave malformed events in logstash.dead).
    limits = {
        "*": {"min_consumers": 1},
        "logstash.dead": {"min_consumers": 0},
        "celerystack.dead": {"min_consumers": 0, "max_ready": 0},
    }
    healthy = run_playbook(PLAYBOOKS / "queues.yml", extra_vars={"rabbitmq_queue_limits": limits})
    assert healthy.rc == 0, healthy.output
    counted = broker_queues()  # and Celery's own queues, which the platform does not declare
    for name in [*DECLARED, "celerystack.dead"]:
        ready, consumers = counted[name]
        assert f"{name}: {ready} ready, " in healthy.output, name
        assert f"{consumers} consumers" in healthy.output, name
    past = run_playbook(
        PLAYBOOKS / "queues.yml",
        extra_vars={"rabbitmq_queue_limits": {**limits, "email": {"min_consumers": 5}}},
    )
    assert past.rc != 0
    assert "email: consumers 1, min_consumers 5" in past.output, past.output
    bad = run_playbook(
        PLAYBOOKS / "queues.yml", extra_vars={"rabbitmq_queue_limits": {"email": {"max_redy": 1}}}
    )
    assert bad.rc != 0
    assert "limits.email.max_redy is not a limit" in bad.output, bad.output


# --- Purge -------------------------------------------------------------------------------------


def purge(check: bool = False, **extra):
    return run_playbook(PLAYBOOKS / "purge.yml", extra_vars=extra, check=check)


def test_a_purge_is_refused_while_the_queue_has_consumers_and_removes_exactly_what_was_queued():
    host = app_host()
    refused = purge(celerystack_purge_queue="email")
    assert refused.rc != 0
    assert "refused: queue email in vhost /celery has 1 consumer(s)" in refused.output
    assert host.service("celery-worker-email").is_running
    unknown = purge(celerystack_purge_queue="emial", celerystack_purge_stop_workers=True)
    assert unknown.rc != 0
    assert "celerystack_purge_queue must name a queue of celerystack_topology" in unknown.output
    assert host.service("celery-worker-email").is_running
    # Seven tasks wait in the queue while its worker is down (as after an outage).
    stop_unwatched(host, "celery-worker-email")
    try:
        sent = django_shell(
            "from celerystack_app.celery import app\n"
            "for n in range(7):\n"
            "    app.send_task('celerystack_app.mail.tasks.send_notification',"
            " args=['nobody@celerystack.invalid', 'purge drill', str(n)], queue='email')"
        )
        assert sent.rc == 0, sent.stderr
        assert wait_until(lambda: broker_queues()["email"] == (7, 0), 30), broker_queues()
        checked = purge(
            check=True, celerystack_purge_queue="email", celerystack_purge_stop_workers=True
        )
        assert checked.rc == 0, checked.output
        assert "7 ready message(s) would be purged from email" in checked.output, checked.output
        assert broker_queues()["email"] == (7, 0)
        purged = purge(celerystack_purge_queue="email", celerystack_purge_stop_workers=True)
        assert purged.rc == 0, purged.output
        assert "7 ready message(s) were purged from email" in purged.output, purged.output
    finally:
        host.run("systemctl start celery-worker-email && monit monitor celery-worker-email")
    # The purge started the worker again, and monit watches it again.
    assert host.service("celery-worker-email").is_running
    assert wait_until(lambda: broker_queues()["email"] == (0, 1), 30), broker_queues()
    assert wait_until(
        lambda: "Not monitored" not in host.run("monit status celery-worker-email").stdout, 30
    )


# --- Drain, resume, rolling restart ------------------------------------------------------------


def drain(**extra):
    return run_playbook(PLAYBOOKS / "drain.yml", extra_vars=extra)


def test_a_drain_during_a_running_task_loses_nothing_and_resume_consumes_the_backlog():
    host = app_host()
    key = started_long_running(10)
    stopped = drain(celerystack_drain="stop", celerystack_drain_queues=["default"])
    try:
        assert stopped.rc == 0, stopped.output
        # Warm: the running task finished in its first attempt before the service stopped.
        assert completion(key) == (1, True)
        assert not host.service("celery-worker-default").is_running
        assert host.service("celery-worker-email").is_running  # only the queue asked for
        # A quorum queue counts its consumers once a second.
        assert wait_until(lambda: broker_queues()["default"][1] == 0, 10), broker_queues()
        # What is sent meanwhile waits in the broker, unrun. (Beat's heartbeat shares the queue,
        # so it may hold one more message by now: the count is at least one, not exactly one.)
        waiting = f"long-{uuid.uuid4().hex[:8]}"
        send_long_running(waiting, 1)
        assert wait_until(lambda: broker_queues()["default"][0] >= 1, 30), broker_queues()
        assert broker_queues()["default"][1] == 0
        assert completion(waiting) == (0, False)
    finally:
        started = drain(celerystack_drain="start", celerystack_drain_queues=["default"])
    assert started.rc == 0, started.output
    assert wait_until(lambda: completion(waiting) == (1, True), 60), completion(waiting)
    assert wait_until(
        lambda: "Not monitored" not in host.run("monit status celery-worker-default").stdout, 30
    )
    # A rolling warm restart of every worker service, one host at a time.
    before = {unit: main_pid(unit) for unit in ("celery-worker-default", "celery-worker-email")}
    rolled = drain(celerystack_drain="restart", celerystack_drain_serial=1)
    assert rolled.rc == 0, rolled.output
    for unit, pid in before.items():
        assert host.service(unit).is_running and main_pid(unit) != pid, unit
    refused = drain(celerystack_drain="pause")
    assert refused.rc != 0 and "celerystack_drain must be stop, start or restart" in refused.output


# --- A backlog after an outage ---------------------------------------------------------------


def test_a_backlog_runs_with_raised_autoscale_until_drained_then_the_settings_go_back():
    host = app_host()
    unit = "celery-worker-mail_data"
    topology_autoscale = "--autoscale=16,4"
    assert topology_autoscale in host.check_output(f"systemctl cat {unit}")
    # The outage: the queue's worker is down while 60 events' tasks pile up.
    stop_unwatched(host, unit)
    batch = uuid.uuid4().hex[:8]
    try:
        sent = django_shell(
            "from celerystack_app.mail.tasks import store_mail_data\n"
            "for n in range(60):\n"
            f"    store_mail_data.delay(event_id=f'backlog-{batch}-{{n}}')"
        )
        assert sent.rc == 0, sent.stderr
        assert wait_until(lambda: broker_queues()["mail_data"][0] == 60, 30), broker_queues()
        run = run_playbook(
            PLAYBOOKS / "backlog.yml",
            diff=True,
            extra_vars={
                "celerystack_backlog_queue": "mail_data",
                "celerystack_backlog_autoscale": "8,2",
                "celerystack_backlog_poll": 2,
                "celerystack_backlog_timeout": 300,
            },
        )
    finally:
        host.run(f"systemctl start {unit}; monit monitor {unit}")
    assert run.rc == 0, run.output
    # Raised for the drain (the unit's diff), back to the topology's after it.
    assert "--autoscale=8,2" in run.output, run.output
    # The raised workers start on the backlog before the wait's first read.
    assert re.search(r"mail_data: \d+ ready when the wait began, 0 after", run.output), run.output
    assert topology_autoscale in host.check_output(f"systemctl cat {unit}")
    assert host.service(unit).is_running
    assert wait_until(lambda: rows(f"backlog-{batch}-", prefix=True) == 60, 60)
    bad = run_playbook(
        PLAYBOOKS / "backlog.yml",
        extra_vars={
            "celerystack_backlog_queue": "mail_data",
            "celerystack_backlog_autoscale": "2,8",
        },
    )
    assert bad.rc != 0
    assert "queues[1].worker.autoscale: 'max,min' needs 1 <= min <= max" in bad.output, bad.output
    assert topology_autoscale in host.check_output(f"systemctl cat {unit}")


# --- Locks -------------------------------------------------------------------------------------

HOLD = (
    "import time\n"
    "from celerystack_app.mail import locks\n"
    "assert locks.acquire(locks.lock_client(), {key!r}, 600, 'drill-task')\n"
    "time.sleep({seconds})\n"
)


def lock_keys(pattern: str) -> dict[str, str]:
    result = django_shell(
        "import json\nfrom celerystack_app.mail import locks\n"
        f"print('LOCKS', json.dumps({{l['key']: l['state'] for l in "
        f"locks.held(locks.lock_client(), {pattern!r})}}))"
    )
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("LOCKS"))
    return json.loads(line.split(" ", 1)[1])


def clear_drill_locks() -> None:
    result = django_shell(
        "from celerystack_app.mail import locks\nclient = locks.lock_client()\n"
        "for key in client.scan_iter(match=locks.settings.LOCK_PREFIX + 'drill:*'):\n"
        "    client.delete(key)"
    )
    assert result.rc == 0, result.stderr


def hold_lock(key: str, seconds: float) -> str:
    """A process on app1 that takes `key` and keeps running for `seconds` (a live holder); with 0
    it exits at once, leaving the lock to a dead holder. Returns its transient unit."""
    unit = f"drill-{uuid.uuid4().hex[:6]}"
    code = HOLD.format(key=key, seconds=seconds)
    app_host().check_output(
        f"systemd-run --unit={unit} --uid=celerystack -p EnvironmentFile={ENV_FILE} "
        f"{MANAGE} shell --no-imports -c {shlex.quote(code)}"
    )
    return unit


def test_a_stale_lock_is_freed_only_when_its_holder_is_gone():
    host = app_host()
    clear_drill_locks()  # a run interrupted earlier
    live = hold_lock("drill:live", 300)
    dead = hold_lock("drill:dead", 0)
    try:
        assert wait_until(
            lambda: lock_keys("drill:*") == {"drill:dead": "dead", "drill:live": "alive"}
        )
        listed = run_playbook(
            PLAYBOOKS / "locks.yml", extra_vars={"celery_app_locks_match": "drill:*"}
        )
        assert listed.rc == 0, listed.output
        assert "drill:dead: dead, held by app1 pid " in listed.output, listed.output
        assert "drill:live: alive, held by app1 pid " in listed.output, listed.output
        assert "(task drill-task)" in listed.output, listed.output
        # A live holder refuses the whole request, before anything is freed.
        refused = run_playbook(
            PLAYBOOKS / "locks.yml",
            extra_vars={"celery_app_locks_match": "drill:*", "celery_app_locks_free": True},
        )
        assert refused.rc != 0
        assert "Refused: drill:live (holder alive)" in refused.output, refused.output
        assert set(lock_keys("drill:*")) == {"drill:dead", "drill:live"}
        # --check says what would go and frees nothing; the run frees exactly that.
        dead_only = {"celery_app_locks_match": "drill:d*", "celery_app_locks_free": True}
        checked = run_playbook(PLAYBOOKS / "locks.yml", extra_vars=dead_only, check=True)
        assert checked.rc == 0 and checked.changed()["app1"] == 1, checked.output
        assert set(lock_keys("drill:*")) == {"drill:dead", "drill:live"}
        freed = run_playbook(PLAYBOOKS / "locks.yml", extra_vars=dead_only)
        assert freed.rc == 0 and freed.changed()["app1"] == 1, freed.output
        assert lock_keys("drill:*") == {"drill:live": "alive"}
        again = run_playbook(PLAYBOOKS / "locks.yml", extra_vars=dead_only)
        assert again.rc == 0 and again.changed()["app1"] == 0, again.output
        # Force frees a live holder's lock, with a warning that names it.
        forced = run_playbook(
            PLAYBOOKS / "locks.yml",
            extra_vars={
                "celery_app_locks_match": "drill:live",
                "celery_app_locks_free": True,
                "celery_app_locks_force": True,
            },
        )
        assert forced.rc == 0 and forced.changed()["app1"] == 1, forced.output
        assert "WARNING: freeing by force drill:live: alive, held by" in forced.output
        assert lock_keys("drill:*") == {}
    finally:
        host.run(f"systemctl stop {live} {dead}; systemctl reset-failed {live} {dead}")
        clear_drill_locks()


# --- Beat moved off a host --------------------------------------------------------------------


def moved_inventory(tmp_path: Path) -> str:
    """The scenario's inventory with beat on another host (app-db) instead of app1."""
    source = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    target = tmp_path / "inventory"
    shutil.copytree(source, target)
    hosts = target / "ansible_inventory.yml"
    inventory = yaml.safe_load(hosts.read_text())
    inventory["beat"]["hosts"] = {"app-db": inventory["all"]["hosts"]["app-db"]}
    hosts.write_text(yaml.safe_dump(inventory))
    return str(target)


@pytest.mark.last
def test_beat_moved_to_another_host_stops_on_the_old_one_in_the_same_run(tmp_path):
    host = app_host()
    moved = run_playbook(inventory=moved_inventory(tmp_path), limit="app1", tags="beat,monit")
    try:
        assert moved.rc == 0, moved.output
        assert host.run("systemctl is-active celery-beat").stdout.strip() != "active"
        assert not host.file("/etc/systemd/system/celery-beat.service").exists
        assert not host.file("/etc/monit/conf.d/celerystack-celery-beat.conf").exists
        assert host.run("pgrep -f '[c]elery .* beat'").rc == 1  # [c]: not this shell
    finally:
        restored = run_playbook(limit="app1", tags="beat,monit")
    assert restored.rc == 0, restored.output
    assert host.service("celery-beat").is_running
    assert wait_until(lambda: "celery-beat" in host.run("monit summary").stdout, 30)


# --- Broker wipe -------------------------------------------------------------------------------


@pytest.mark.last
def test_a_broker_wipe_needs_the_node_named_and_ends_with_a_round_trip():
    broker = testinfra.get_host("podman://app-broker")

    def started() -> str:
        return broker.check_output(
            "systemctl show -P ActiveEnterTimestampMonotonic rabbitmq-server"
        )

    before = started()
    for confirm in ({}, {"celerystack_wipe_confirm": "app-brokr"}):
        refused = run_playbook(PLAYBOOKS / "wipe.yml", extra_vars=confirm)
        assert refused.rc != 0
        assert "Refused: wiping app-broker deletes every message it holds" in refused.output
    assert started() == before
    wiped = run_playbook(
        PLAYBOOKS / "wipe.yml",
        extra_vars={"celerystack_wipe_confirm": "app-broker", "celery_app_roundtrip_events": 20},
    )
    assert wiped.rc == 0, wiped.output
    assert started() != before
    # The workers reconnected by themselves: the round trip's events all became rows.
    assert "20 of 20 events became rows" in wiped.output, wiped.output


# --- Worker logs -------------------------------------------------------------------------------


def send_heartbeat() -> str:
    """Send the heartbeat task to the default queue under a name of its own; returns the name."""
    marker = uuid.uuid4().hex
    sent = django_shell(
        "from celerystack_app.celery import app\n"
        f"app.send_task('celerystack_app.mail.tasks.heartbeat', kwargs={{'name': '{marker}'}},"
        " queue='default')"
    )
    assert sent.rc == 0, sent.stderr
    return marker


def test_worker_logs_rotate_while_the_worker_keeps_writing():
    host = app_host()
    log = "/var/log/celery/celery-worker-default.log"
    assert host.run(f"test -s {log}").rc == 0
    host.check_output("logrotate --force /etc/logrotate.d/celerystack-workers")
    assert host.file(f"{log}.1").size > 0
    assert host.file(log).size == 0
    # The worker still writes to the file it had open: a task's lines land in the fresh log.
    send_heartbeat()
    assert wait_until(lambda: host.file(log).size > 0, 30)
    assert "celerystack_app.mail.tasks.heartbeat" in host.file(log).content_string
    # Logrotate runs hourly, so a log past celery_worker_log_max_size goes within the hour.
    timer = host.check_output("systemctl show -P TimersCalendar logrotate.timer")
    assert "OnCalendar=*-*-* *:00:00" in timer, timer


# --- Disk space --------------------------------------------------------------------------------
# RabbitMQ's store on the broker is a file system of its own (a 1 GiB tmpfs, molecule.yml), with
# rabbitmq_disk_free_limit 100MB (host_vars/app-broker.yml): monit alerts below 2 x 100 MB free.
BROKER_STORE = "/var/lib/rabbitmq"
MB = 1000**2


def a_task_runs() -> bool:
    """Send a heartbeat task; true once its row is stored."""
    marker = send_heartbeat()
    return wait_until(lambda: heartbeats(marker) == 1, 30)


def test_a_filling_disk_makes_monit_alert_before_rabbitmq_blocks_publishers():
    broker = testinfra.get_host("podman://app-broker")
    fill = f"{BROKER_STORE}/celerystack-disk-drill"

    def free() -> int:
        blocks, size = broker.check_output(f"stat -f -c '%a %S' {BROKER_STORE}").split()
        return int(blocks) * int(size)

    def fill_until(left: int) -> None:
        broker.check_output(f"fallocate -l {free() - left} {fill}-{left}")

    def alarms() -> str:
        checked = broker.run("rabbitmq-diagnostics -q check_local_alarms")
        return "" if checked.rc == 0 else checked.stdout + checked.stderr

    def monit_disk() -> str:
        return broker.run("monit status disk-rabbitmq").stdout

    assert re.search(r"\n  status\s+OK", monit_disk()), monit_disk()
    assert alarms() == ""
    try:
        # 150 MB free: below monit's 200 MB, above RabbitMQ's 100 MB.
        fill_until(150 * MB)
        assert wait_until(lambda: "Resource limit matched" in monit_disk(), 60), monit_disk()
        journal = broker.check_output("journalctl -u monit --no-pager")
        assert re.search(r"'disk-rabbitmq' space free .* matches resource limit", journal), journal
        # Messages still flow: a task sent now runs.
        assert a_task_runs()
        assert alarms() == ""
        # 50 MB free: RabbitMQ's own alarm blocks publishers.
        fill_until(50 * MB)
        assert wait_until(lambda: "disk" in alarms().lower(), 60), alarms()
    finally:
        broker.run(f"rm -f {fill}-*")
    # Freed, both clear by themselves, and tasks flow again.
    assert wait_until(lambda: alarms() == "", 60), alarms()
    assert wait_until(lambda: re.search(r"\n  status\s+OK", monit_disk()), 60), monit_disk()
    assert a_task_runs()


# --- The round trip across a database restart --------------------------------------------------


def test_the_round_trip_waits_out_a_database_restart_and_says_so():
    database = testinfra.get_host("podman://app-db")
    host = app_host()
    roundtrip = f"{MANAGE} roundtrip --events 20 --timeout 120"
    command = f"set -a; . {ENV_FILE}; set +a; exec runuser -u celerystack -- {roundtrip}"
    started = host.run(
        "systemd-run --unit=drill-roundtrip --collect"
        " -p StandardOutput=file:/run/drill-roundtrip.out"
        " -p StandardError=file:/run/drill-roundtrip.err"
        f" bash -c {shlex.quote(command)}"
    )
    assert started.rc == 0, started.stderr
    time.sleep(1)
    database.check_output("systemctl stop mariadb")
    time.sleep(8)
    database.check_output("systemctl start mariadb")
    assert wait_until(lambda: host.run("systemctl is-active drill-roundtrip").rc != 0, 150)
    out = host.file("/run/drill-roundtrip.out").content_string
    err = host.file("/run/drill-roundtrip.err").content_string
    result = json.loads(out.splitlines()[-1])
    assert (result["published"], result["stored"]) == (20, 20), out + err
    assert "lost the database connection" in err, err
    assert "the database connection is back" in err, err
    assert "Traceback" not in err, err
