"""Controller-side proof for the mariadb role: check mode, bad input, password rotation, and no
secret in any playbook output."""

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
from conftest import CA

SECRETS = vault_values()
ROTATED = "r0tated-Te5t-only-dd41"


def login(password, user="celerystack"):
    """Try a TLS login from the application host; return the client's rc and output."""
    env = f"MYSQL_PWD={shlex.quote(password)}"
    cmd = f"mariadb -h db -u {user} --ssl --ssl-ca={CA} --ssl-verify-server-cert -e 'SELECT 1'"
    result = testinfra.get_host("podman://app1").run(f"{env} {cmd}")
    return result.rc, result.stdout + result.stderr


def test_check_mode_after_converge_reports_no_change():
    run = run_playbook("database.yml", check=True)
    assert run.rc == 0, run.output
    assert run.recap["db"]["changed"] == 0, run.output


BAD_INPUTS = [
    ({"mariadb_runtime_password": ""}, "mariadb_runtime_password"),
    ({"mariadb_tls_certificate": ""}, "mariadb_tls_certificate"),
    ({"mariadb_app_hosts": ["%"]}, "mariadb_app_hosts"),
    ({"mariadb_bind_addresses": ["db.example"]}, "mariadb_bind_addresses"),
    ({"mariadb_port": "three-three-zero-six"}, "mariadb_port"),
]


@pytest.mark.parametrize(("bad", "variable"), BAD_INPUTS, ids=[case[1] for case in BAD_INPUTS])
def test_bad_input_fails_before_any_change(bad, variable):
    # A real change (max_connections) rides along: it must not be applied. No --limit: the role
    # derives mariadb_app_hosts from the application hosts' facts.
    run = run_playbook("database.yml", extra_vars={"mariadb_max_connections": 77, **bad})
    assert run.rc != 0
    assert variable in run.output, run.output
    assert run.recap["db"]["changed"] == 0
    live = testinfra.get_host("podman://db").check_output(
        "mariadb -N -e 'SELECT @@max_connections'"
    )
    assert live == "200"


def test_missing_passwords_are_named_by_argument_validation(tmp_path):
    assert_required_variables_are_named(
        "mariadb", ["mariadb_migration_password", "mariadb_runtime_password"], tmp_path
    )


def test_a_rotation_window_accepts_both_passwords_then_only_the_new_one():
    # The documented rotation: the new password with the old one kept as previous (both log in,
    # TLS still required), then the previous list emptied (the old one is refused).
    old = SECRETS["vault_mariadb_runtime_password"]
    window = {
        "vault_mariadb_runtime_password": ROTATED,
        "mariadb_runtime_previous_passwords": [old],
    }
    predicted = run_playbook("database.yml", extra_vars=window, check=True)
    assert predicted.rc == 0 and predicted.recap["db"]["changed"] > 0, predicted.output
    assert login(ROTATED)[0] != 0  # check mode wrote nothing
    opened = run_playbook("database.yml", extra_vars=window)
    try:
        assert opened.rc == 0, opened.output
        assert login(ROTATED)[0] == 0
        assert login(old)[0] == 0
        plain = testinfra.get_host("podman://app1").run(
            f"MYSQL_PWD={shlex.quote(old)} mariadb -h db -u celerystack --skip-ssl -e 'SELECT 1'"
        )
        assert plain.rc != 0, plain.stdout
        again = run_playbook("database.yml", extra_vars=window)
        assert again.rc == 0 and again.recap["db"]["changed"] == 0, again.output

        closed = run_playbook(
            "database.yml", extra_vars={"vault_mariadb_runtime_password": ROTATED}
        )
        assert closed.rc == 0, closed.output
        assert login(ROTATED)[0] == 0
        rc, out = login(old)
        assert rc != 0 and "Access denied" in out
    finally:
        restored = run_playbook("database.yml")
        assert restored.rc == 0, restored.output
    assert login(old)[0] == 0
    assert login(ROTATED)[0] != 0


@pytest.mark.last
@pytest.mark.last  # after every playbook run of the scenario (test_redis_broker's included)
def test_no_secret_reaches_any_playbook_output():
    assert_no_secret_in_log("mariadb", [ROTATED], tls_hosts=["db"])
