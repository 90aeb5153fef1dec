# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The passwords a MariaDB account accepts, as a chain of mysql_native_password hashes.

MariaDB (10.4 and later) lets one account authenticate in several ways, tried in order:
`IDENTIFIED VIA mysql_native_password USING '<hash>' OR mysql_native_password USING '<hash>'`.
Celerystack uses that for password rotation without a gap: during the rotation window the
account accepts the new password first and each previous one after it, so the clients that still
hold the old password keep connecting until they are restarted with the new one.

Everything here is pure (no database): the module reads `mysql.global_priv`, and these functions
say what the account holds, what it should hold and the statement that gets it there. Only
hashes ever reach the statement (and the server's logs), never a password.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

PLUGIN = "mysql_native_password"


def native_hash(password):
    """The server's mysql_native_password hash: '*' and the upper-case hex SHA1 of SHA1."""
    # SHA1 is the protocol's own scheme (the server stores this); nothing here relies on it.
    inner = hashlib.sha1(password.encode("utf-8")).digest()  # noqa: S324
    return "*" + hashlib.sha1(inner).hexdigest().upper()  # noqa: S324


def wanted_chain(passwords):
    """The hashes an account should accept, in order, without repeats (the first is current)."""
    chain = []
    for password in passwords:
        digest = native_hash(password)
        if digest not in chain:
            chain.append(digest)
    return chain


def current_chain(priv):
    """The (plugin, authentication string) pairs a `mysql.global_priv.Priv` value holds.

    A single way is at the top level; a chain repeats the first at the top level and lists all
    in `auth_or`, where `{}` stands for that top-level one.
    """
    data = json.loads(priv) if isinstance(priv, str) else dict(priv or {})
    first = (data.get("plugin", ""), data.get("authentication_string", ""))
    if not data.get("auth_or"):
        return [first]
    return [
        first if not way else (way.get("plugin", ""), way.get("authentication_string", ""))
        for way in data["auth_or"]
    ]


def needs_change(priv, chain):
    """True when the account does not accept exactly `chain`, in order, by mysql_native_password."""
    return current_chain(priv) != [(PLUGIN, digest) for digest in chain]


def alter_statement(chain):
    """The ALTER USER statement (user and host as the first two parameters, then each hash) that
    sets `chain`. Other account attributes (REQUIRE SSL, limits) are left as they are."""
    if not chain:
        raise ValueError("an account needs at least one password")
    ways = " OR ".join("%s USING %%s" % PLUGIN for _digest in chain)
    return "ALTER USER %%s@%%s IDENTIFIED VIA %s" % ways, list(chain)


def describe(ways, current_is_new=False):
    """What the diff shows of an account: how many passwords it accepts, never a hash."""
    text = "%d password%s" % (len(ways), "" if len(ways) == 1 else "s")
    return text + (", the current one new" if current_is_new else "")


def plan(accounts, chain):
    """For each (user, host, priv) read from the server, whether it changes, and the diff.

    Returns (changes, before, after): `changes` lists the (user, host) pairs to alter.
    """
    changes, before, after = [], {}, {}
    for user, host, priv in accounts:
        if not needs_change(priv, chain):
            continue
        ways = current_chain(priv)
        name = "%s@%s" % (user, host)
        changes.append((user, host))
        before[name] = describe(ways)
        after[name] = describe(chain, ways[0] != (PLUGIN, chain[0]))
    return changes, before, after
