"""The module over a stand-in server: what it reads, what it writes, check mode and failures."""

import json
from types import SimpleNamespace

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.celerystack.platform.plugins.module_utils import mariadb_auth as auth
from ansible_collections.celerystack.platform.plugins.modules import mariadb_passwords as module

NATIVE = "mysql_native_password"


class FakeServer:
    """Accounts as mysql.global_priv holds them; ALTER USER statements are recorded."""

    def __init__(self, accounts):
        self.accounts = dict(accounts)
        self.statements = []
        self.committed = False

    # pymysql.connect(...) returns the connection, the connection gives the cursor
    def connect(self, **_kwargs):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def cursor(self):
        return self

    def commit(self):
        self.committed = True

    def execute(self, statement, params):
        if statement.startswith("SELECT"):
            self.rows = [(u, h, p) for (u, h), p in self.accounts.items() if u == params[0]]
        else:
            self.statements.append((statement, list(params)))

    def fetchall(self):
        return self.rows


def priv(*passwords):
    chain = auth.wanted_chain(passwords)
    data = {"plugin": NATIVE, "authentication_string": chain[0]}
    if len(chain) > 1:
        data["auth_or"] = [{}] + [{"plugin": NATIVE, "authentication_string": h} for h in chain[1:]]
    return json.dumps(data)


def run(monkeypatch, server, check=False, **args):
    # PyMySQL is on the managed host, not necessarily here.
    monkeypatch.setattr(module, "pymysql", SimpleNamespace(connect=server.connect, Error=OSError))
    params = {"user": "app", "hosts": ["10.0.0.1"], "_ansible_check_mode": check, **args}
    with patch_module_args(params), pytest.raises(SystemExit):
        module.main()


def result(capsys):
    return json.loads(capsys.readouterr().out)


def test_a_converged_account_is_left_alone(monkeypatch, capsys):
    server = FakeServer({("app", "10.0.0.1"): priv("new", "old")})
    run(monkeypatch, server, passwords=["new", "old"])
    out = result(capsys)
    assert out["changed"] is False and server.statements == []


def test_closing_the_window_leaves_the_new_password_alone(monkeypatch, capsys):
    server = FakeServer({("app", "10.0.0.1"): priv("new", "old"), ("app", "10.0.0.2"): priv("x")})
    run(monkeypatch, server, passwords=["new"], hosts=["10.0.0.1", "10.0.0.2"])
    out = result(capsys)
    assert out["changed"] is True
    assert out["changed_accounts"] == ["app@10.0.0.1", "app@10.0.0.2"]
    assert [params for _statement, params in server.statements] == [
        ["app", "10.0.0.1", auth.native_hash("new")],
        ["app", "10.0.0.2", auth.native_hash("new")],
    ]
    assert server.committed
    assert "new" not in json.dumps(out["diff"]) and "old" not in json.dumps(out["diff"])


def test_check_mode_reports_and_writes_nothing(monkeypatch, capsys):
    server = FakeServer({("app", "10.0.0.1"): priv("old")})
    run(monkeypatch, server, check=True, passwords=["new", "old"], hosts=["10.0.0.1", "10.0.0.9"])
    out = result(capsys)
    assert out["changed"] is True and server.statements == []
    assert out["diff"]["before"] == {"app@10.0.0.1": "1 password", "app@10.0.0.9": "absent"}
    assert out["diff"]["after"]["app@10.0.0.9"] == "2 passwords"


def test_a_missing_account_fails_outside_check_mode(monkeypatch, capsys):
    server = FakeServer({})
    run(monkeypatch, server, passwords=["new"])
    out = result(capsys)
    assert out["failed"] and "no such account: app@10.0.0.1" in out["msg"]
    assert server.statements == []


def test_an_empty_password_is_refused(monkeypatch, capsys):
    run(monkeypatch, FakeServer({}), passwords=["new", ""])
    out = result(capsys)
    assert out["failed"] and out["msg"].startswith("passwords:")
