"""Behaviour of the mariadb role on real systemd hosts: who may connect from where, what each
account may do, and that unencrypted connections of the application accounts are refused."""

from __future__ import annotations

import shlex
import uuid

import pytest
import testinfra
from celerystack_testlib import vault_values
from conftest import CA

JOURNAL_UNITS = ("mariadb",)
testinfra_hosts = ["db"]
SECRETS = vault_values()
RUNTIME = ("celerystack", SECRETS["vault_mariadb_runtime_password"])
MIGRATION = ("celerystack_migrate", SECRETS["vault_mariadb_migration_password"])


def client(name):
    return testinfra.get_host(f"podman://{name}")


def sql(client_name, statement, account=None, tls=True, database="celerystack"):
    """Run one statement with the mariadb client on `client_name` against host `db`."""
    argv = ["mariadb", "-h", "db", "-N", "-B", "--connect-timeout=5"]
    if tls:
        argv += ["--ssl", f"--ssl-ca={CA}", "--ssl-verify-server-cert"]
    else:
        argv += ["--skip-ssl"]
    env = ""
    if account:
        argv += ["-u", account[0]]
        env = f"MYSQL_PWD={shlex.quote(account[1])} "
    if database:
        argv += [database]
    result = client(client_name).run(env + shlex.join([*argv, "-e", statement]))
    return result.rc, (result.stdout + result.stderr).strip()


def test_mariadb_is_enabled_and_running(host):
    assert host.service("mariadb").is_enabled
    assert host.service("mariadb").is_running


def test_mariadb_listens_only_on_configured_addresses(host):
    network = host.check_output("hostname -I").split()[0]
    listening = {
        line.split()[3].rsplit(":", 1)[0]
        for line in host.check_output("ss -Hltn 'sport = :3306'").splitlines()
    }
    assert listening == {"127.0.0.1", network}


def test_anonymous_login_is_refused():
    rc, out = sql("app1", "SELECT 1", account=("", ""), database=None)
    assert rc != 0 and "Access denied" in out


def test_remote_root_is_refused():
    for password in ("", "root"):
        rc, out = sql("app1", "SELECT 1", account=("root", password), database=None)
        assert rc != 0 and "Access denied" in out


def test_root_works_only_through_the_local_socket(host):
    assert host.check_output("mariadb -N -e 'SELECT CURRENT_USER()'") == "root@localhost"


def test_test_database_is_absent(host):
    assert "test" not in host.check_output("mariadb -N -e 'SHOW DATABASES'").split()


def test_runtime_account_has_dml_in_the_app_schema():
    table = f"t_{uuid.uuid4().hex[:8]}"
    assert sql("app1", f"CREATE TABLE {table} (id INT PRIMARY KEY, v TEXT)", MIGRATION)[0] == 0
    statements = [
        f"INSERT INTO {table} VALUES (1, 'a')",
        f"UPDATE {table} SET v = 'b' WHERE id = 1",
        f"SELECT v FROM {table} WHERE id = 1",
        f"DELETE FROM {table} WHERE id = 1",
    ]
    results = [sql("app1", statement, RUNTIME) for statement in statements]
    assert [result[0] for result in results] == [0, 0, 0, 0], results
    assert results[2][1] == "b"
    assert sql("app1", f"DROP TABLE {table}", MIGRATION)[0] == 0


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE forbidden (id INT)",
        "DROP TABLE IF EXISTS django_migrations",
        "CREATE DATABASE other",
        "SELECT user FROM mysql.user",
    ],
)
def test_runtime_account_is_refused_ddl_and_other_schemas(statement):
    rc, out = sql("app1", statement, RUNTIME)
    assert rc != 0 and "denied" in out, out


def test_migration_account_can_create_tables_only_in_the_app_schema():
    assert sql("app1", "CREATE TABLE IF NOT EXISTS migrated (id INT)", MIGRATION)[0] == 0
    assert sql("app1", "DROP TABLE migrated", MIGRATION)[0] == 0
    for statement in ("CREATE DATABASE other", "CREATE TABLE mysql.evil (id INT)"):
        rc, out = sql("app1", statement, MIGRATION)
        assert rc != 0 and "denied" in out, (statement, out)


def test_accounts_are_refused_from_a_host_not_allowed():
    # Without TLS the client shows the server's own refusal (with TLS it is hidden behind
    # "error packet before completion of TLS handshake"); the host check comes before either.
    for account in (RUNTIME, MIGRATION):
        rc, out = sql("outsider", "SELECT 1", account, tls=False)
        assert rc != 0 and "is not allowed to connect" in out, out


def test_unencrypted_connection_of_an_app_account_is_refused():
    rc, out = sql("app1", "SELECT 1", RUNTIME, tls=False)
    assert rc != 0 and ("insecure transport" in out or "Access denied" in out), out


def test_tls_connection_verifying_the_ca_works():
    rc, out = sql("app1", "SHOW STATUS LIKE 'Ssl_version'", RUNTIME)
    assert rc == 0 and out.split()[1].startswith("TLSv1."), out


def test_server_character_set_is_utf8mb4(host):
    out = host.check_output('mariadb -N -e "SELECT @@character_set_server, @@collation_server"')
    assert out.split() == ["utf8mb4", "utf8mb4_unicode_ci"]


def test_tls_key_is_closed_to_other_users(host):
    result = host.run("runuser -u nobody -- cat /etc/mysql/tls/server.key")
    assert result.rc != 0 and "Permission denied" in result.stderr
