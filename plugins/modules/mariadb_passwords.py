#!/usr/bin/python
# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mariadb_passwords
short_description: Make MariaDB accounts accept exactly a list of passwords, the first current
version_added: 0.3.0
author: Celerystack engineers (@celerystack)
description:
  - Sets the passwords an existing MariaDB account accepts as a chain of C(mysql_native_password)
    ways (C(IDENTIFIED VIA ... OR ...), MariaDB 10.4 and later), so that a password is rotated
    without a gap - the new one and the previous ones are accepted until the previous ones are
    dropped from the list.
  - Compares hashes computed here with the server's C(mysql.global_priv); only hashes reach the
    server, never a password, so no password is in a statement or the server's logs.
  - Changes only the authentication; privileges, C(REQUIRE SSL) and limits stay as they are
    (manage them with M(community.mysql.mysql_user)).
  - Connects as the user running the module through the server's Unix socket (root's
    C(unix_socket) login on Debian).
attributes:
  check_mode:
    support: full
    description: Reads the accounts and reports which would change, without writing.
  diff_mode:
    support: full
    description: Shows how many passwords each changed account accepts before and after; never a
      hash.
requirements:
  - PyMySQL on the managed host (Debian's C(python3-pymysql))
options:
  user:
    description: The account's user name.
    type: str
    required: true
  hosts:
    description: The account's host parts; each C(user@host) must exist.
    type: list
    elements: str
    required: true
  passwords:
    description:
      - The passwords the account accepts, in the order they are tried; the first is current.
      - During a rotation, the new password followed by the previous ones; afterwards the new one
        alone. From vault variables.
    type: list
    elements: str
    required: true
  login_unix_socket:
    description: The server's socket.
    type: path
    default: /run/mysqld/mysqld.sock
"""

EXAMPLES = r"""
- name: Accept the new password and, until the clients restart, the previous one
  celerystack.platform.mariadb_passwords:
    user: celerystack
    hosts: [10.0.0.21, 10.0.0.22]
    passwords:
      - "{{ vault_mariadb_runtime_password }}"
      - "{{ vault_mariadb_runtime_password_previous }}"
  no_log: true
"""

RETURN = r"""
changed_accounts:
  description: The C(user@host) accounts whose passwords changed (or would, in check mode).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.celerystack.platform.plugins.module_utils import mariadb_auth

try:
    import pymysql
except ImportError:  # pragma: no cover - reported by main()
    pymysql = None


def read_accounts(cursor, user, hosts):
    cursor.execute("SELECT User, Host, Priv FROM mysql.global_priv WHERE User = %s", (user,))
    found = {(row[0], row[1]): row[2] for row in cursor.fetchall()}
    missing = [host for host in hosts if (user, host) not in found]
    return [(user, host, found[(user, host)]) for host in hosts if (user, host) in found], missing


def main():
    module = AnsibleModule(
        argument_spec=dict(
            user=dict(type="str", required=True),
            hosts=dict(type="list", elements="str", required=True),
            passwords=dict(type="list", elements="str", required=True, no_log=True),
            login_unix_socket=dict(type="path", default="/run/mysqld/mysqld.sock"),
        ),
        supports_check_mode=True,
    )
    if pymysql is None:
        module.fail_json(msg=missing_required_lib("PyMySQL"))
    params = module.params
    if not params["passwords"] or not all(params["passwords"]):
        module.fail_json(msg="passwords: give at least one, and no empty one")
    chain = mariadb_auth.wanted_chain(params["passwords"])
    try:
        connection = pymysql.connect(unix_socket=params["login_unix_socket"], user="root")
    except pymysql.Error as err:
        module.fail_json(msg="cannot log in through %s: %s" % (params["login_unix_socket"], err))
    with connection:
        cursor = connection.cursor()
        accounts, missing = read_accounts(cursor, params["user"], params["hosts"])
        names = ["%s@%s" % (params["user"], host) for host in missing]
        if missing and not module.check_mode:
            module.fail_json(msg="no such account: %s" % ", ".join(names))
        changes, before, after = mariadb_auth.plan(accounts, chain)
        # In check mode an account the run would create is not there yet: it would get `chain`.
        for name in names:
            before[name], after[name] = "absent", mariadb_auth.describe(chain)
        if changes and not module.check_mode:
            statement, hashes = mariadb_auth.alter_statement(chain)
            for user, host in changes:
                cursor.execute(statement, [user, host, *hashes])
            connection.commit()
    module.exit_json(
        changed=bool(before),
        changed_accounts=sorted(before),
        diff=dict(before=before, after=after),
    )


if __name__ == "__main__":
    main()
