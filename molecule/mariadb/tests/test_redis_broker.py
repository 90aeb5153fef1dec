"""Celery on Redis: this scenario's platform (site.yml over an inventory whose topology says
`broker: redis`; Redis over TLS on the database host). Workers, beat and Flower run on Redis;
the Logstash event path is a list; kombu stays inside the broker user's ACL; a caller gets a
task's result through the Redis result backend (its own user) and Flower shows it; countdown tasks
run on time; a worker killed with SIGKILL and a Redis restart in the middle of a steady stream
lose no event; the visibility timeout every process has is the one derived from the topology.
"""

from __future__ import annotations

import json
import shlex
import time
import uuid
from pathlib import Path

import pytest
import testinfra
from celerystack_app_host import (
    MANAGE,
    app_host,
    as_app,
    completion,
    django_shell,
    flower,
    ran_at,
    send,
    start_stream,
    started_long_running,
    stream_result,
)
from celerystack_testlib import inventory_vars, run_playbook, vault_values, wait_until

testinfra_hosts = ["app1"]
SECRETS = vault_values()
PLAYBOOKS = Path("../../playbooks")
CELERY = "/opt/celerystack/venv/bin/celery"
WORKERS = ["default", "mail_data", "email", "logstash"]
UNITS = [f"celery-worker-{queue}" for queue in WORKERS] + ["celery-beat", "celery-flower"]
# max_countdown 30 plus the 20 s time limit (the inventory's celery_worker_defaults).
VISIBILITY_TIMEOUT = 50


def redis(*command, user="admin"):
    """redis-cli on the database host, over TLS as a client would, as `user` (admin, celery or
    locks); the password travels in REDISCLI_AUTH, never in argv."""
    password = SECRETS[
        f"vault_redis_{ {'celery': 'broker', 'locks': 'lock'}.get(user, user) }_password"
    ]
    argv = ["redis-cli", "--no-auth-warning", "--tls", "--cacert", "/etc/redis/tls/ca.crt"]
    argv += ["-h", "db", "--user", user, *command]
    result = testinfra.get_host("podman://db").run(
        f"REDISCLI_AUTH={shlex.quote(password)} {shlex.join(argv)}"
    )
    return (result.stdout + result.stderr).strip()


def every_worker_running() -> bool:
    return all(app_host().service(unit).is_running for unit in UNITS)


def test_every_service_runs_on_redis_with_the_derived_visibility_timeout():
    assert wait_until(every_worker_running, 60)
    projection = json.loads(app_host().file("/etc/celerystack/topology.json").content_string)
    assert (projection["broker"], projection["visibility_timeout"]) == ("redis", 50)
    shown = django_shell(
        "from django.conf import settings\n"
        "print('BROKER', settings.CELERY_BROKER_URL.split(':')[0],"
        " settings.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'])"
    )
    assert f"BROKER rediss {VISIBILITY_TIMEOUT}" in shown.stdout, shown.stdout + shown.stderr
    # Every worker answers through the broker (Celery's pidbox: Redis pub/sub, under the ACL).
    ping = as_app(CELERY, "-A", "celerystack_app", "inspect", "ping", "--timeout", "10")
    assert ping.stdout.count("pong") == len(WORKERS), ping.stdout + ping.stderr


def test_the_event_round_trip_runs_on_redis_and_kombu_stays_inside_its_acl():
    assert redis("ACL", "LOG", "RESET") == "OK"
    result = as_app(MANAGE, "roundtrip", "--events", "40", "--timeout", "240")
    assert result.rc == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert (figures["published"], figures["stored"]) == (40, 40), figures
    # Nothing the workers, beat, Flower or the event drain did was refused by the ACL...
    assert "user=celery" not in redis("ACL", "LOG")
    # ...and every key is kombu's (celery:), an event list (events:), a lock (lock:) or a task
    # result (results:).
    keys = redis("--scan").split()
    # (the second application's keys are all under shop:, test_applications.py)
    prefixes = ("celery:", "events:", "lock:", "results:", "shop:")
    assert keys and all(k.startswith(prefixes) for k in keys), keys


@pytest.mark.parametrize(
    ("user", "command"),
    [
        ("celery", ["GET", "lock:anything"]),
        ("celery", ["FLUSHALL"]),
        ("celery", ["KEYS", "*"]),
        ("locks", ["LLEN", "celery:mail_data"]),
        ("locks", ["RPUSH", "events:logstash", "{}"]),
        ("celery", ["GET", "results:celery-task-meta-x"]),
        ("results", ["LLEN", "celery:mail_data"]),
        ("results", ["GET", "lock:anything"]),
    ],
)
def test_each_redis_user_is_refused_outside_its_keys_and_commands(user, command):
    assert "NOPERM" in redis(*command, user=user)


def test_a_caller_gets_a_result_through_the_redis_backend_and_flower_shows_it():
    got = django_shell(
        "import json\n"
        "from celerystack_app.mail.tasks import mail_data_stats\n"
        "result = mail_data_stats.delay()\n"
        "print('GOT', result.id, json.dumps(result.get(timeout=60)))"
    )
    line = next((ln for ln in got.stdout.splitlines() if ln.startswith("GOT")), None)
    assert line, got.stdout + got.stderr
    task_id, value = line.split(" ", 2)[1:]
    assert isinstance(json.loads(value)["stored"], int)
    # Kept under the results user's prefix, expiring (celery_app_result_expires: 3600).
    assert 0 < int(redis("TTL", f"results:celery-task-meta-{task_id}")) <= 3600
    # Flower has it, from the task events.
    status, page = flower(f"/api/task/info/{task_id}", SECRETS["vault_flower_password"])
    assert status == 200, page
    info = json.loads(page)
    assert (info["state"], json.loads(info["result"].replace("'", '"'))) == (
        "SUCCESS",
        json.loads(value),
    )


def test_a_malformed_event_goes_to_the_dead_letter_list_with_its_reason():
    marker = uuid.uuid4().hex
    assert redis("RPUSH", "events:logstash", json.dumps({"marker": marker})).isdigit()

    def dead():
        listed = redis("LRANGE", "events:logstash.dead", "0", "-1").splitlines()
        return [json.loads(line) for line in listed if marker in line]

    assert wait_until(dead, 60)
    assert dead()[0]["reason"] == "event has no 'id'"


def test_a_countdown_task_waits_and_runs_on_time_on_redis():
    marker = f"countdown-{uuid.uuid4().hex[:8]}"
    sent = send(marker, "countdown=20")
    time.sleep(5)
    assert ran_at(marker) is None
    assert wait_until(lambda: ran_at(marker) is not None, 60)
    assert ran_at(marker) - sent >= 19


def test_a_queue_is_purged_on_redis_with_its_workers_stopped():
    # docs/operations.md, "Celery on Redis": drain.yml stop, celery purge, drain.yml start.
    email = {"celerystack_drain_queues": ["email"]}
    stopped = run_playbook(
        PLAYBOOKS / "drain.yml", extra_vars={"celerystack_drain": "stop", **email}
    )
    assert stopped.rc == 0, stopped.output
    marker = f"purged-{uuid.uuid4().hex[:8]}"
    sent = django_shell(
        "from celerystack_app.mail.tasks import heartbeat\n"
        f"for _ in range(3): heartbeat.apply_async(kwargs={{'name': {marker!r}}}, queue='email')"
    )
    assert sent.rc == 0, sent.stderr
    assert redis("LLEN", "celery:email") == "3"
    purged = as_app(CELERY, "-A", "celerystack_app", "purge", "-Q", "email", "-f")
    assert purged.rc == 0 and "Purged 3 messages" in purged.stdout, purged.stdout + purged.stderr
    assert redis("LLEN", "celery:email") == "0"
    started = run_playbook(
        PLAYBOOKS / "drain.yml", extra_vars={"celerystack_drain": "start", **email}
    )
    assert started.rc == 0, started.output
    assert wait_until(every_worker_running, 60)
    time.sleep(3)
    assert ran_at(marker) is None


def test_the_redis_only_checks_refuse_a_rabbitmq_playbook_before_any_change():
    run = run_playbook(PLAYBOOKS / "purge.yml", extra_vars={"celerystack_purge_queue": "mail_data"})
    assert run.rc != 0
    assert "celerystack_topology.broker is redis" in run.output, run.output
    assert all(recap["changed"] == 0 for recap in run.recap.values()), run.output
    assert every_worker_running()


TOPOLOGY = inventory_vars()["celerystack_topology"]
SHOP = inventory_vars()["celerystack_applications"][0]
BAD_INPUTS = [
    ({"celery_app_broker_scheme": "amqps"}, "celery_app_broker_scheme is amqps, but"),
    (
        {"celerystack_topology": {**TOPOLOGY, "exchanges": [{"name": "logstash"}]}},
        "celerystack_topology.exchanges: is RabbitMQ's",
    ),
    (
        {"celerystack_topology": {**TOPOLOGY, "visibility_timeout": 30}},
        "celerystack_topology.visibility_timeout: must be at least 50 s",
    ),
    # Results (this inventory keeps them in Redis): a backend the platform does not build (the
    # database, django-celery-results), and results that would expire before a caller reads them.
    (
        {"celery_app_result_backend": "database"},
        "celery_app_result_backend must be '' (no results) or redis (given 'database')",
    ),
    ({"celery_app_result_expires": 30}, "60 or more (given 30)"),
    # The second application (test_applications.py): its Flower on the first one's port, and a
    # database of the first one's.
    (
        {"celerystack_applications": [{**SHOP, "flower_port": 5555}]},
        "celerystack_applications[0] (shop).flower_port: '5555' is also the first application's",
    ),
    (
        {"celerystack_applications": [{**SHOP, "db_name": "celerystack"}]},
        "celerystack_applications[0] (shop).db_name: 'celerystack' is also the first application's",
    ),
]


@pytest.mark.parametrize(
    ("bad", "message"),
    BAD_INPUTS,
    ids=["scheme", "exchanges", "timeout", "results", "expires", "app-port", "app-db"],
)
def test_bad_input_for_a_redis_platform_is_named_before_any_change(bad, message):
    # A real change rides along (the heartbeat every 20 s): it must not be applied.
    schedules = [{**inventory_vars("app")["celery_app_schedules"][0], "interval": {"every": 20}}]
    run = run_playbook("../../site.yml", extra_vars={"celery_app_schedules": schedules, **bad})
    assert run.rc != 0
    assert message in run.output, run.output
    assert all(recap["changed"] == 0 for recap in run.recap.values()), run.output


def test_smoke_checks_pass_on_redis():
    # For each application (the first and shop): its settings pass Django's deployment checks,
    # no migration is pending, its beat runs once, its Flower refuses a request without its
    # login and lists every one of its workers with it; monit finds every service and disk
    # healthy.
    run = run_playbook(PLAYBOOKS / "smoke.yml")
    assert run.rc == 0, run.output


def test_check_mode_on_the_converged_platform_reports_nothing_to_change():
    run = run_playbook("converge.yml", check=True)
    assert run.rc == 0, run.output
    assert all(recap["changed"] == 0 for recap in run.recap.values()), run.output


@pytest.mark.last
def test_workers_killed_with_sigkill_mid_stream_lose_no_event():
    assert wait_until(every_worker_running, 60)
    start_stream("drill-redis-kill", events=60, rate=4)
    time.sleep(5)
    killed = app_host().run(
        "systemctl kill --signal=SIGKILL celery-worker-logstash celery-worker-mail_data"
    )
    assert killed.rc == 0, killed.stderr
    # An event the drain had taken is handled again from its processing list; a task a killed
    # worker held comes back once the visibility timeout has passed.
    result = stream_result("drill-redis-kill")
    assert (result["published"], result["stored"]) == (60, 60), result
    assert wait_until(every_worker_running, 60)


@pytest.mark.last
def test_a_task_held_by_a_worker_killed_with_sigkill_comes_back_after_the_visibility_timeout():
    key = started_long_running(10)
    killed_at = time.monotonic()
    app_host().check_output("systemctl kill --signal=SIGKILL celery-worker-default")
    # systemd starts the worker again at once; the task stays in celery:unacked until it has
    # been held longer than the visibility timeout, then runs again, and completes once.
    assert wait_until(lambda: completion(key) == (2, True), VISIBILITY_TIMEOUT + 90)
    assert time.monotonic() - killed_at >= VISIBILITY_TIMEOUT - 15
    assert wait_until(every_worker_running, 60)


@pytest.mark.last
def test_a_redis_restart_mid_stream_loses_no_event():
    start_stream("drill-redis-restart", events=60, rate=4)
    time.sleep(5)
    testinfra.get_host("podman://db").check_output("systemctl restart redis-server")
    result = stream_result("drill-redis-restart")
    assert (result["published"], result["stored"]) == (60, 60), result
    assert wait_until(every_worker_running, 60)
