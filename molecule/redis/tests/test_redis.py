"""Behaviour of the redis role on real systemd hosts: who may log in, what they may touch,
where Redis listens, and that data survives a restart."""

from __future__ import annotations

import shlex
import uuid

import pytest
from celerystack_testlib import vault_values

JOURNAL_UNITS = ("redis-server",)
SECRETS = vault_values()
BROKER = ("celery", SECRETS["vault_redis_broker_password"])
LOCKS = ("locks", SECRETS["vault_redis_lock_password"])
ADMIN = ("admin", SECRETS["vault_redis_admin_password"])


def is_tls(host) -> bool:
    return host.backend.get_hostname() == "redis-tls"


def network_address(host) -> str:
    return host.check_output("hostname -I").split()[0]


def redis(host, *command, user=None, target=None, tls=None):
    """Run redis-cli on `host` against `target` (default: the host's network address).

    The password travels in REDISCLI_AUTH, as an operator would pass it, never in argv."""
    target = target or network_address(host)
    tls = is_tls(host) if tls is None else tls
    argv = ["redis-cli", "--no-auth-warning", "-h", target, "-p", "6379"]
    if tls:
        argv += ["--tls", "--cacert", "/etc/redis/tls/ca.crt"]
    env = ""
    if user:
        argv += ["--user", user[0]]
        env = f"REDISCLI_AUTH={shlex.quote(user[1])} "
    result = host.run(env + shlex.join([*argv, *command]))
    return (result.stdout + result.stderr).strip()


def test_redis_is_enabled_and_running(host):
    service = host.service("redis-server")
    assert service.is_enabled
    assert service.is_running


def test_redis_listens_only_on_configured_addresses(host):
    expected = {network_address(host)} | ({"127.0.0.1"} if is_tls(host) else set())
    listening = {
        line.split()[3].rsplit(":", 1)[0]
        for line in host.check_output("ss -Hltn 'sport = :6379'").splitlines()
    }
    assert listening == expected
    if not is_tls(host):
        # Loopback is not configured on this host, so nothing answers there.
        assert "Connection refused" in redis(host, "PING", target="127.0.0.1")


def test_connection_without_credentials_is_refused(host):
    assert redis(host, "PING").startswith("NOAUTH")


def test_default_user_cannot_log_in(host):
    out = redis(host, "PING", user=("default", ""))
    assert "WRONGPASS" in out or "AUTH failed" in out


def test_wrong_password_is_refused(host):
    assert "WRONGPASS" in redis(host, "PING", user=("celery", "not-the-password"))


def test_broker_user_can_push_and_pop_its_keys(host):
    key, value = f"celery:test-{uuid.uuid4().hex}", uuid.uuid4().hex
    assert redis(host, "LPUSH", key, value, user=BROKER) == "1"
    assert redis(host, "BRPOP", key, "1", user=BROKER).splitlines() == [key, value]


def test_lock_user_cannot_touch_broker_keys(host):
    for command in (("GET", "celery:anything"), ("LPUSH", "celery:q", "x"), ("DEL", "celery:q")):
        assert redis(host, *command, user=LOCKS).startswith("NOPERM"), command


def test_lock_user_can_take_and_release_a_lock(host):
    key = f"lock:test-{uuid.uuid4().hex}"
    assert redis(host, "SET", key, "owner", "NX", "EX", "30", user=LOCKS) == "OK"
    assert redis(host, "SET", key, "other", "NX", "EX", "30", user=LOCKS) == ""
    assert redis(host, "DEL", key, user=LOCKS) == "1"


def test_broker_user_cannot_touch_lock_keys_or_admin_commands(host):
    assert redis(host, "GET", "lock:anything", user=BROKER).startswith("NOPERM")
    assert redis(host, "CONFIG", "GET", "maxmemory", user=BROKER).startswith("NOPERM")
    assert redis(host, "FLUSHALL", user=BROKER).startswith("NOPERM")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("appendonly", "yes"),
        ("appendfsync", "everysec"),
        ("maxmemory-policy", "noeviction"),
        ("protected-mode", "yes"),
    ],
)
def test_durability_and_memory_settings_are_live(host, name, value):
    assert redis(host, "CONFIG", "GET", name, user=ADMIN).splitlines() == [name, value]


def test_written_key_survives_a_restart(host):
    key, value = f"celery:durable-{uuid.uuid4().hex}", uuid.uuid4().hex
    assert redis(host, "SET", key, value, user=BROKER) == "OK"
    host.check_output("systemctl restart redis-server")
    assert redis(host, "GET", key, user=BROKER) == value


def test_configuration_and_secrets_are_closed_to_other_users(host):
    for path in ("/etc/redis/redis.conf", "/etc/redis/users.acl", "/etc/redis/tls/redis.key"):
        result = host.run(f"runuser -u nobody -- cat {path}")
        assert result.rc != 0 and "Permission denied" in result.stderr, path


def test_tls_port_refuses_plain_text_and_serves_verified_tls(host):
    if not is_tls(host):
        pytest.skip("plain-text host")
    assert redis(host, "PING", user=BROKER, tls=False) != "PONG"
    assert redis(host, "PING", user=BROKER) == "PONG"
    # A client that does not trust our CA is refused by certificate verification.
    out = host.run(
        "REDISCLI_AUTH=x redis-cli --no-auth-warning --tls"
        f" --cacertdir /etc/ssl/certs -h {network_address(host)} PING"
    )
    assert "certificate verify failed" in (out.stdout + out.stderr)


def test_plain_host_is_reachable_across_the_network(host):
    if not is_tls(host):
        pytest.skip("client side runs on redis-tls")
    assert redis(host, "PING", user=BROKER, target="redis-plain", tls=False) == "PONG"
