# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the rabbitmq_access module and of the boot definitions file: password hashes,
and the plan that turns current and wanted vhosts, users and permissions into changes.

Passwords never leave this code in clear: users are written as RabbitMQ SHA-256 password hashes
(`rabbit_password_hashing_sha256`: base64 of a 4-byte salt followed by SHA-256(salt + password)).
The salt is derived from the user and the password, so the same password gives the same hash on
every run: the definitions file stays byte-identical (idempotent) and the live user matches it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac

from ansible_collections.celerystack.platform.plugins.module_utils.rabbitmq_topology import (
    make_change,
)

HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
PERMISSION_KINDS = ("configure", "write", "read")


class AccessError(Exception):
    """Wanted state that is inconsistent; the message names the user or vhost."""


def hash_password(password, salt):
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return base64.b64encode(salt + digest).decode("ascii")


def stable_salt(user, password):
    key = password.encode("utf-8")
    return hmac.new(key, ("celerystack:" + user).encode("utf-8"), hashlib.sha256).digest()[:4]


def password_hash(user, password):
    """The hash Celerystack writes for this user and password; the same on every run."""
    return hash_password(password, stable_salt(user, password))


def password_matches(password, stored_hash):
    """Whether a stored SHA-256 hash (any salt) is the hash of this password."""
    try:
        raw = base64.b64decode(stored_hash or "", validate=True)
    except (ValueError, TypeError):
        return False
    if len(raw) != 36:
        return False
    return hmac.compare_digest(hash_password(password, raw[:4]), stored_hash)


def tags_of(value):
    """Tags as a sorted list, whether the API gives a list or a comma-separated string."""
    if isinstance(value, str):
        value = value.split(",")
    return sorted(t.strip() for t in value or [] if t and t.strip())


def normalize_user(spec):
    return {
        "name": spec["name"],
        "password": spec.get("password") or "",
        "tags": tags_of(spec.get("tags")),
        "permissions": [
            normalize_permission(spec["name"], perm) for perm in spec.get("permissions") or []
        ],
    }


def normalize_permission(user, spec):
    perm = {"user": user, "vhost": spec["vhost"]}
    for kind in PERMISSION_KINDS:
        value = spec.get(kind)
        perm[kind] = ".*" if value is None else value
    return perm


def _unique(names, what):
    seen, duplicates = set(), set()
    for name in names:
        (duplicates if name in seen else seen).add(name)
    if duplicates:
        raise AccessError("%s declared more than once: %s" % (what, ", ".join(sorted(duplicates))))


def validate(vhosts, users, existing_vhosts):
    """Refuse inconsistent input before anything is read from or written to the broker."""
    _unique(vhosts, "vhosts")
    _unique([u["name"] for u in users], "users")
    known = set(vhosts) | set(existing_vhosts)
    for user in users:
        if not user["password"]:
            raise AccessError("user '%s' has an empty password" % user["name"])
        what = "permissions of user '%s'" % user["name"]
        _unique([p["vhost"] for p in user["permissions"]], what)
        for perm in user["permissions"]:
            if perm["vhost"] not in known:
                raise AccessError(
                    "user '%s' has permissions on vhost '%s', which is neither declared in "
                    "vhosts nor present on the broker" % (user["name"], perm["vhost"])
                )


def _user_view(user, password):
    return {"name": user["name"], "tags": user["tags"], "password": password}


def _perm_view(perm):
    return {k: perm[k] for k in ("user", "vhost", *PERMISSION_KINDS)}


def plan(
    current,
    vhosts,
    users,
    login_user,
    remove_undeclared_users=False,
    remove_undeclared_vhosts=False,
):
    """Ordered changes from current {vhosts, users, permissions} (API shapes) to the wanted state.

    The user the module logs in as is never removed. Passwords appear in the plan only as
    'unchanged', 'changed' or 'set'.
    """
    users = [normalize_user(u) for u in users]
    validate(vhosts, users, current["vhosts"])
    current_users = {u["name"]: u for u in current["users"]}
    current_perms = {(p["user"], p["vhost"]): p for p in current["permissions"]}
    changes = []

    for vhost in vhosts:
        if vhost not in current["vhosts"]:
            changes.append(make_change("create", "vhost", vhost, None, {"name": vhost}))

    for user in users:
        live = current_users.get(user["name"])
        if live is None:
            changes.append(
                make_change("create", "user", user["name"], None, _user_view(user, "set"))
            )
            continue
        same_password = password_matches(user["password"], live.get("password_hash"))
        live_view = {"name": live["name"], "tags": tags_of(live.get("tags")), "password": "set"}
        if same_password and live_view["tags"] == user["tags"]:
            continue
        changes.append(
            make_change(
                "update",
                "user",
                user["name"],
                live_view,
                _user_view(user, "unchanged" if same_password else "changed"),
            )
        )

    for user in users:
        declared = set()
        for perm in user["permissions"]:
            key = (user["name"], perm["vhost"])
            declared.add(key)
            live = current_perms.get(key)
            live_view = _perm_view(live) if live else None
            if live_view != _perm_view(perm):
                changes.append(
                    make_change(
                        "update" if live else "create",
                        "permission",
                        "%s@%s" % key,
                        live_view,
                        _perm_view(perm),
                    )
                )
        for key, live in sorted(current_perms.items()):
            if key[0] == user["name"] and key not in declared:
                name = "%s@%s" % key
                changes.append(make_change("delete", "permission", name, _perm_view(live), None))

    if remove_undeclared_users:
        wanted = set(u["name"] for u in users) | {login_user}
        for name in sorted(set(current_users) - wanted):
            live = current_users[name]
            view = {"name": name, "tags": tags_of(live.get("tags")), "password": "set"}
            changes.append(make_change("delete", "user", name, view, None))

    if remove_undeclared_vhosts:
        for vhost in sorted(set(current["vhosts"]) - set(vhosts)):
            changes.append(make_change("delete", "vhost", vhost, {"name": vhost}, None))
    return changes


def user_definition(user):
    """A user as the definitions file and the API's PUT /users take it."""
    user = normalize_user(user)
    return {
        "name": user["name"],
        "password_hash": password_hash(user["name"], user["password"]),
        "hashing_algorithm": HASHING_ALGORITHM,
        "tags": user["tags"],
    }
