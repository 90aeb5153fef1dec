"""The password chain of a MariaDB account: hashes as the server makes them, what an account
holds as `mysql.global_priv` stores it, and the statement that changes it."""

import json

import pytest
from ansible_collections.celerystack.platform.plugins.module_utils import mariadb_auth as auth

# As MariaDB 10.11 computed them (SELECT PASSWORD('aaa'), PASSWORD('bbb')).
AAA = "*A02AA727CF2E8C5E6F07A382910C4028D65A053A"
BBB = "*8BE34F24D29E7B61EE00E4D5AADAE5CBC713D120"
NATIVE = "mysql_native_password"

ONE = json.dumps({"access": 0, "plugin": NATIVE, "authentication_string": AAA})
# What the server stores for IDENTIFIED VIA ... USING PASSWORD('aaa') OR ... PASSWORD('bbb').
TWO = json.dumps(
    {
        "access": 0,
        "plugin": NATIVE,
        "authentication_string": AAA,
        "auth_or": [{}, {"plugin": NATIVE, "authentication_string": BBB}],
    }
)


def test_the_hash_is_the_servers():
    assert auth.native_hash("aaa") == AAA
    assert auth.native_hash("bbb") == BBB


def test_the_wanted_chain_keeps_order_and_drops_repeats():
    assert auth.wanted_chain(["aaa", "bbb", "aaa"]) == [AAA, BBB]


@pytest.mark.parametrize(
    ("priv", "chain"),
    [
        (ONE, [(NATIVE, AAA)]),
        (TWO, [(NATIVE, AAA), (NATIVE, BBB)]),
        (json.loads(TWO), [(NATIVE, AAA), (NATIVE, BBB)]),
        # Debian's root: a socket login after an invalid password.
        (
            json.dumps(
                {
                    "plugin": NATIVE,
                    "authentication_string": "invalid",
                    "auth_or": [{}, {"plugin": "unix_socket"}],
                }
            ),
            [(NATIVE, "invalid"), ("unix_socket", "")],
        ),
    ],
)
def test_the_current_chain_is_read_as_the_server_stores_it(priv, chain):
    assert auth.current_chain(priv) == chain


@pytest.mark.parametrize(
    ("priv", "passwords", "changes"),
    [
        (ONE, ["aaa"], False),
        (ONE, ["bbb"], True),  # a rotation without a window
        (ONE, ["bbb", "aaa"], True),  # the window opens
        (TWO, ["aaa", "bbb"], False),
        (TWO, ["bbb", "aaa"], True),  # the order decides which one is current
        (TWO, ["aaa"], True),  # the window closes
        (json.dumps({"plugin": "ed25519", "authentication_string": "x"}), ["aaa"], True),
    ],
)
def test_an_account_changes_only_when_its_chain_differs(priv, passwords, changes):
    assert auth.needs_change(priv, auth.wanted_chain(passwords)) is changes


def test_the_statement_carries_hashes_only():
    statement, params = auth.alter_statement([AAA, BBB])
    assert statement == (
        "ALTER USER %s@%s IDENTIFIED VIA mysql_native_password USING %s"
        " OR mysql_native_password USING %s"
    )
    assert params == [AAA, BBB]
    with pytest.raises(ValueError):
        auth.alter_statement([])


def test_the_plan_names_accounts_and_counts_passwords_but_shows_no_hash():
    accounts = [("app", "10.0.0.1", ONE), ("app", "10.0.0.2", TWO)]
    changes, before, after = auth.plan(accounts, auth.wanted_chain(["bbb", "aaa"]))
    assert changes == [("app", "10.0.0.1"), ("app", "10.0.0.2")]
    assert before == {"app@10.0.0.1": "1 password", "app@10.0.0.2": "2 passwords"}
    assert after == {
        "app@10.0.0.1": "2 passwords, the current one new",
        "app@10.0.0.2": "2 passwords, the current one new",
    }
    assert AAA not in repr((before, after)) and BBB not in repr((before, after))
    assert auth.plan(accounts[1:], auth.wanted_chain(["aaa", "bbb"])) == ([], {}, {})
