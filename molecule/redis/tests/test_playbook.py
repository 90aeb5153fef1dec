"""Controller-side proof for the redis role: check mode, bad input, rotation, no leaked secret.

These run ansible-playbook against the converged scenario hosts, exactly as an operator would."""

from __future__ import annotations

import shlex

import pytest
import testinfra
from celerystack_testlib import (
    assert_no_secret_in_log,
    assert_required_variables_are_named,
    run_playbook,
    vault_values,
)

SECRETS = vault_values()
ROTATED = "r0tated-Te5t-only-51b0"


def host(name):
    return testinfra.get_host(f"podman://{name}")


def live(name, *command, password=SECRETS["vault_redis_admin_password"], user="admin"):
    """Ask the server on `name` through its admin socket."""
    env = f"REDISCLI_AUTH={shlex.quote(password)}"
    cmd = shlex.join(
        [
            "redis-cli",
            "--no-auth-warning",
            "-s",
            "/run/redis/redis-server.sock",
            "--user",
            user,
            *command,
        ]
    )
    result = host(name).run(f"{env} {cmd}")
    return (result.stdout + result.stderr).strip()


def test_check_mode_after_converge_reports_no_change():
    run = run_playbook(check=True)
    assert run.rc == 0, run.output
    assert run.changed() and set(run.changed().values()) == {0}, run.output


# Each case asks for a real change (maxmemory) next to one bad value: the run must stop in
# preflight, name the variable, and leave the live server as it was.
BAD_INPUTS = [
    ({"redis_broker_password": ""}, "redis_broker_password"),
    ({"redis_bind_addresses": ["10.0.0.999"]}, "redis_bind_addresses"),
    ({"redis_tls_enabled": True}, "redis_tls_certificate"),
    ({"redis_port": "six-three-seven-nine"}, "redis_port"),
    ({"redis_appendfsync": "no"}, "redis_appendfsync"),
    ({"redis_maxmemory": "lots"}, "redis_maxmemory"),
]


@pytest.mark.parametrize(("bad", "variable"), BAD_INPUTS, ids=[case[1] for case in BAD_INPUTS])
def test_bad_input_fails_before_any_change(bad, variable):
    run = run_playbook(extra_vars={"redis_maxmemory": "64mb", **bad}, limit="redis-plain")
    assert run.rc != 0
    assert variable in run.output, run.output
    assert run.recap["redis-plain"]["changed"] == 0
    assert live("redis-plain", "CONFIG", "GET", "maxmemory").splitlines() == ["maxmemory", "0"]


def test_missing_passwords_are_named_by_argument_validation(tmp_path):
    assert_required_variables_are_named(
        "redis", ["redis_admin_password", "redis_broker_password", "redis_lock_password"], tmp_path
    )


def test_password_rotation_keeps_both_then_drops_the_old_without_restart():
    old = SECRETS["vault_redis_broker_password"]
    pid = host("redis-plain").check_output("systemctl show -P MainPID redis-server")

    window = run_playbook(
        extra_vars={"redis_broker_password": ROTATED, "redis_broker_previous_passwords": [old]},
        limit="redis-plain",
    )
    assert window.rc == 0, window.output
    for password in (ROTATED, old):
        assert live("redis-plain", "PING", user="celery", password=password) == "PONG"

    done = run_playbook(extra_vars={"redis_broker_password": ROTATED}, limit="redis-plain")
    assert done.rc == 0, done.output
    assert live("redis-plain", "PING", user="celery", password=ROTATED) == "PONG"
    assert "WRONGPASS" in live("redis-plain", "PING", user="celery", password=old)
    # ACL LOAD, not a restart: connected workers are never dropped by a rotation.
    assert host("redis-plain").check_output("systemctl show -P MainPID redis-server") == pid

    restored = run_playbook(limit="redis-plain")
    assert restored.rc == 0, restored.output
    assert live("redis-plain", "PING", user="celery", password=old) == "PONG"


@pytest.mark.last
def test_no_secret_reaches_any_playbook_output():
    log = assert_no_secret_in_log("redis", [ROTATED], tls_hosts=["redis-tls"])
    for sha in (line for line in log.splitlines() if "#" in line and "user celery" in line):
        pytest.fail(f"an ACL line with a password hash was printed: {sha[:40]}...")
