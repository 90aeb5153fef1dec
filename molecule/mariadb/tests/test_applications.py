"""Two applications on one platform: this scenario's first application (the reference
application) and `shop`, a Django project of its own (files/shop: its own package, settings,
Celery module and manage command, written against the documented settings contract only), side
by side on the same hosts and stores. Each has its own services, paths, user, secrets, database,
Redis namespace and Flower; a task of one reaches only its own workers; each one's credentials
are refused by the other's stores.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time

import pytest
import testinfra
from celerystack_app_host import app_host, as_app, flower
from celerystack_testlib import run_playbook, vault_values, wait_until
from conftest import CA

testinfra_hosts = ["app1"]
SECRETS = vault_values()
SHOP_UNITS = ["celery-shop-worker-default", "celery-shop-worker-orders", "celery-shop-beat"]
FIRST_UNITS = ["celery-worker-default", "celery-worker-mail_data", "celery-beat", "celery-flower"]
SHOP_VENV = "/opt/celerystack-shop/venv"


def shop_shell(code: str) -> str:
    """Run Python in shop's own `shop-manage shell` as its user; its stdout."""
    result = as_app(f"{SHOP_VENV}/bin/shop-manage", "shell", "--no-imports", stdin=code, app="shop")
    assert result.rc == 0, result.stderr
    return result.stdout


def shop_count(model: str, **where) -> int:
    out = shop_shell(
        f"from shop.models import {model}\n"
        f"print('COUNT', {model}.objects.filter(**{where!r}).count())"
    )
    return int(next(ln for ln in out.splitlines() if ln.startswith("COUNT")).split()[1])


def db_host():
    return testinfra.get_host("podman://db")


def redis_as(user: str, password: str, *command) -> str:
    argv = ["redis-cli", "--no-auth-warning", "--tls", "--cacert", "/etc/redis/tls/ca.crt"]
    argv += ["-h", "db", "--user", user, *command]
    result = db_host().run(f"REDISCLI_AUTH={shlex.quote(password)} {shlex.join(argv)}")
    return (result.stdout + result.stderr).strip()


def mysql_as(user: str, password: str, database: str) -> str:
    """Log in to MariaDB from the application host over TLS as `user`, into `database`."""
    argv = ["mariadb", "-h", "db", "--connect-timeout=5", "--ssl", f"--ssl-ca={CA}"]
    argv += ["-u", user, "-D", database, "--batch", "-e", "SELECT 1 AS ok"]
    result = app_host().run(f"MYSQL_PWD={shlex.quote(password)} {shlex.join(argv)}")
    return (result.stdout + result.stderr).strip()


def test_each_application_runs_its_own_services_side_by_side():
    host = app_host()
    for unit in [*SHOP_UNITS, "celery-shop-flower", *FIRST_UNITS]:
        assert host.service(unit).is_running, unit
    # The target groups this application's workers only.
    wants = host.check_output("systemctl show -P Wants celery-shop.target").split()
    assert sorted(wants) == [
        "celery-shop-worker-default.service",
        "celery-shop-worker-orders.service",
    ]
    user = host.check_output("systemctl show -P User celery-shop-worker-default")
    assert user == "celerystack-shop"
    # monit watches both applications' services, each by its own rule.
    summary = host.check_output("monit summary")
    for unit in [*SHOP_UNITS, "celery-shop-flower", *FIRST_UNITS]:
        assert unit in summary, summary


def test_a_task_of_one_application_reaches_only_its_own_workers():
    numbers = [f"order-{int(time.time())}-{n}" for n in range(5)]
    shop_shell(f"from shop.tasks import record\nfor n in {numbers!r}: record.delay(n)\n")
    assert wait_until(lambda: shop_count("Order", number__in=numbers) == 5, 60)
    # Its route (topology.json) sent them to its orders queue's worker, and the worker read its
    # extra secret (SHOP_API_TOKEN, from its own secrets file).
    token = hashlib.sha256(SECRETS["vault_shop_api_token"].encode()).hexdigest()
    assert shop_count("Order", number__in=numbers, worker="orders@app1", token_digest=token) == 5
    # Only shop's nodes answer shop's broker (its own namespace: 2 workers; the first
    # application has 4).
    ping = as_app(
        f"{SHOP_VENV}/bin/celery",
        "-A",
        "shop",
        "inspect",
        "ping",
        "--timeout",
        "5",
        "--json",
        app="shop",
    )
    assert ping.rc == 0, ping.stderr
    assert sorted(json.loads(ping.stdout)) == ["default@app1", "orders@app1"], ping.stdout


def test_the_second_application_has_its_own_beat_and_flower():
    # Its beat runs its own schedule (tick every 10 s) into its own database.
    before = shop_count("Tick")
    assert wait_until(lambda: shop_count("Tick") > before, 60)

    # Its Flower (its own port, the platform's logins) sees its two workers, not the first
    # application's four.
    def workers() -> list[str]:
        status, page = flower("/api/workers?refresh=1", SECRETS["vault_flower_password"], port=5556)
        return sorted(json.loads(page)) if status == 200 else []

    assert wait_until(lambda: workers() == ["default@app1", "orders@app1"], 60), workers()
    assert flower("/api/workers", None, port=5556)[0] == 401


def test_a_converge_watches_again_a_running_service_monit_gave_up_on_not_a_stopped_one():
    # monit's restart-loop guard leaves a service "Not monitored" (as it did with shop's
    # crash-looping workers while their ACL was wrong). Once the fix is deployed and the service
    # runs, a converge watches it again; one stopped on purpose (a drain) stays stopped.
    host = app_host()
    given_up, stopped = "celery-shop-flower", "celery-shop-worker-orders"

    def watched(unit: str) -> bool:
        return "Not monitored" not in host.run(f"monit status {unit}").stdout

    host.run(f"monit unmonitor {given_up}; monit unmonitor {stopped}")
    assert wait_until(lambda: not watched(given_up) and not watched(stopped), 30)
    host.run(f"systemctl stop {stopped}")
    try:
        run = run_playbook("../../site.yml", tags="monit")
        assert run.rc == 0, run.output
        assert run.recap["app1"]["changed"] >= 1, run.output
        assert watched(given_up)
        assert not watched(stopped) and not host.service(stopped).is_running
    finally:
        host.run(f"systemctl start {stopped}; monit monitor {stopped}")
    assert wait_until(lambda: watched(stopped) and host.service(stopped).is_running, 60)
    # Both are watched again and healthy, as the smoke test wants them.
    assert wait_until(
        lambda: all(
            line.split()[1] == "OK"
            for line in host.check_output("monit summary -B").splitlines()
            if line.split()[:1] in ([given_up], [stopped])
        ),
        60,
    )


def test_each_application_keeps_its_secrets_from_the_other():
    host = app_host()
    shop = host.file("/etc/celerystack-shop/secrets")
    assert (shop.user, shop.mode) == ("celerystack-shop", 0o400)
    # Its own secret is a line of its file, which the other application's user cannot read.
    assert (
        host.run("grep -c '^SHOP_API_TOKEN=' /etc/celerystack-shop/secrets").stdout.strip() == "1"
    )
    for user, other in (("celerystack", "celerystack-shop"), ("celerystack-shop", "celerystack")):
        denied = host.run(f"runuser -u {user} -- cat /etc/{other}/secrets")
        assert denied.rc != 0 and "Permission denied" in denied.stderr, (user, denied.stdout)


@pytest.mark.parametrize(
    ("user", "password", "command"),
    [
        ("celery-shop", "vault_shop_broker_password", ["GET", "celery:x"]),
        ("celery-shop", "vault_shop_broker_password", ["LPUSH", "events:logstash", "{}"]),
        ("celery", "vault_redis_broker_password", ["GET", "shop:celery:x"]),
        ("locks-shop", "vault_shop_lock_password", ["SET", "lock:x", "1"]),
        ("locks", "vault_redis_lock_password", ["SET", "shop:lock:x", "1"]),
    ],
    ids=[
        "shop-broker-on-first",
        "shop-broker-on-events",
        "first-broker-on-shop",
        "shop-locks",
        "first-locks",
    ],
)
def test_each_application_is_refused_by_the_others_redis_keys(user, password, command):
    assert "NOPERM" in redis_as(user, SECRETS[password], *command)


def test_each_application_is_refused_by_the_others_database():
    own = mysql_as("celerystack_shop", SECRETS["vault_shop_db_password"], "celerystack_shop")
    assert "ok" in own, own
    for user, password, database in (
        ("celerystack_shop", "vault_shop_db_password", "celerystack"),
        ("celerystack", "vault_mariadb_runtime_password", "celerystack_shop"),
    ):
        refused = mysql_as(user, SECRETS[password], database)
        assert "Access denied" in refused, refused
