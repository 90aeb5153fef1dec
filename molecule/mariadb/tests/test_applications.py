"""Two applications on one platform: this scenario's first application and `shop` (the
reference application again, an entry of celerystack_applications), side by side on the same
hosts and stores. Each has its own services, paths, user, secrets, database, Redis namespace and
Flower; a task of one reaches only its own workers; each one's credentials are refused by the
other's stores.
"""

from __future__ import annotations

import json
import shlex
import time

import pytest
import testinfra
from celerystack_app_host import app_host, as_app, django_shell, flower
from celerystack_testlib import vault_values, wait_until
from conftest import CA

testinfra_hosts = ["app1"]
SECRETS = vault_values()
SHOP_UNITS = ["celery-shop-worker-default", "celery-shop-worker-mail_data", "celery-shop-beat"]
FIRST_UNITS = ["celery-worker-default", "celery-worker-mail_data", "celery-beat", "celery-flower"]
COUNT_ROWS = (
    "from celerystack_app.mail.models import MailData\n"
    "print('ROWS', MailData.objects.filter(event_id__startswith=PREFIX).count())"
)


def db_host():
    return testinfra.get_host("podman://db")


def rows(prefix: str, app: str = "") -> int:
    result = django_shell(COUNT_ROWS.replace("PREFIX", repr(prefix)), app)
    assert result.rc == 0, result.stderr
    return int(next(ln for ln in result.stdout.splitlines() if ln.startswith("ROWS")).split()[1])


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
        "celery-shop-worker-mail_data.service",
    ]
    user = host.check_output("systemctl show -P User celery-shop-worker-default")
    assert user == "celerystack-shop"
    # monit watches both applications' services, each by its own rule.
    summary = host.check_output("monit summary")
    for unit in [*SHOP_UNITS, "celery-shop-flower", *FIRST_UNITS]:
        assert unit in summary, summary


def test_a_task_of_one_application_reaches_only_its_own_workers():
    prefix = f"shop-{int(time.time())}-"
    sent = django_shell(
        "from celerystack_app.mail.tasks import store_mail_data\n"
        f"for n in range(5): store_mail_data.delay({prefix!r} + str(n), 'a@x.org', 'b@x.org')\n",
        app="shop",
    )
    assert sent.rc == 0, sent.stderr
    assert wait_until(lambda: rows(prefix, "shop") == 5, 60), rows(prefix, "shop")
    # The first application's database never saw them, and only shop's nodes answer shop's
    # broker (its own namespace: 2 workers; the first application has 4).
    assert rows(prefix) == 0
    ping = as_app(
        "/opt/celerystack-shop/venv/bin/celery",
        "-A",
        "celerystack_app",
        "inspect",
        "ping",
        "--timeout",
        "5",
        "--json",
        app="shop",
    )
    assert ping.rc == 0, ping.stderr
    assert ping.stdout.count("pong") == 2, ping.stdout


def test_the_second_application_has_its_own_beat_and_flower():
    # Its beat runs its own schedules (the heartbeat every 10 s) into its own database.
    def beats() -> int:
        result = django_shell(
            "from celerystack_app.mail.models import Heartbeat\n"
            "print('BEATS', Heartbeat.objects.filter(name='beat').count())",
            "shop",
        )
        return int(
            next(ln for ln in result.stdout.splitlines() if ln.startswith("BEATS")).split()[1]
        )

    before = beats()
    assert wait_until(lambda: beats() > before, 60)

    # Its Flower (its own port, the platform's logins) sees its two workers, not the first
    # application's four.
    def workers() -> list[str]:
        status, page = flower("/api/workers?refresh=1", SECRETS["vault_flower_password"], port=5556)
        return sorted(json.loads(page)) if status == 200 else []

    assert wait_until(lambda: workers() == ["default@app1", "mail_data@app1"], 60), workers()
    assert flower("/api/workers", None, port=5556)[0] == 401


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
