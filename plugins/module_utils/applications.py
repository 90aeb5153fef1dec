# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform's applications: the first one and `celerystack_applications`, each a named unit.

The platform's first application is the one the celery_app, celery_worker, celery_beat and
flower roles' own variables describe (celery_app_*, celerystack_topology, ...): its name is ""
and it keeps the names a one-application platform always had (celery-worker-<queue>,
/etc/celerystack, user celerystack). Every other application is an entry of
`celerystack_applications`, and everything that is its own is namespaced by its name:

- its services: celery-<name>-worker-<queue>, celery-<name>-beat, celery-<name>-flower, the
  target celery-<name>.target, logs in /var/log/celery-<name>, monit rules after the units;
- its paths and its user: /etc/celerystack-<name>, /opt/celerystack-<name>, celerystack-<name>;
- its stores: its own database and accounts, its own vhost (RabbitMQ) or Redis key namespace
  `<name>:` (kombu's keys under <name>:celery:, event lists under <name>:events:, locks under
  <name>:lock:, results under <name>:results:), its own broker, lock and result users.

`names()` is that derivation, `errors()` checks the entries, `role_vars()` turns an entry into
the role variables the site's plays run the roles with. Pure Python with no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:
    from ansible_collections.celerystack.platform.plugins.module_utils import topology as _topology
except ImportError:  # pragma: no cover - loaded as a plain module (unit tests, the app)
    import topology as _topology  # type: ignore[no-redef]

# A name becomes part of unit, user, path, database and key names: lower-case letters and
# digits, no hyphen (so that no application's unit glob, celery-<name>-worker-*, can match
# another's), short enough for every one of those.
NAME = re.compile(r"^[a-z][a-z0-9]{1,15}$")
# Names whose services would read like the first application's (celery-worker-..., celery-beat,
# celery-flower) or like the platform itself.
RESERVED = ("celery", "celerystack", "worker", "beat", "flower", "target")
# An extra secret's name: a line NAME=value of the secrets file.
SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

# An entry's keys: the application's own settings, with the celery_app role variable each one
# sets (celery_app_<key> unless listed in OTHER_VARIABLES).
APP_KEYS = (
    "source",
    "package",
    "settings_module",
    "celery_module",
    "manage_command",
    "db_name",
    "db_user",
    "db_password",
    "db_migration_user",
    "db_migration_password",
    "broker_vhost",
    "broker_user",
    "broker_password",
    "lock_user",
    "lock_password",
    "result_backend",
    "result_user",
    "result_password",
    "result_expires",
    "secret_key",
    "secret_key_fallbacks",
    "extra_environment",
    "extra_secrets",
    "email_file_path",
    "schedules",
    "schedules_purge",
    "migrate",
)
OTHER_VARIABLES = {
    "topology": "celerystack_topology",
    "worker_defaults": "celery_worker_defaults",
    "flower_port": "flower_port",
}
REQUIRED = (
    "topology",
    "db_password",
    "db_migration_password",
    "broker_password",
    "lock_password",
    "secret_key",
)
SECRETS = (
    "db_password",
    "db_migration_password",
    "broker_password",
    "lock_password",
    "result_password",
    "secret_key",
    "secret_key_fallbacks",
    "extra_secrets",
)
# Only the stores read these: the passwords a rotation window still accepts (docs/operations.md).
STORE_KEYS = (
    "db_previous_passwords",
    "db_migration_previous_passwords",
    "broker_previous_passwords",
    "lock_previous_passwords",
    "result_previous_passwords",
)
KEYS = ("name", *APP_KEYS, *OTHER_VARIABLES, *STORE_KEYS)
# The first application's Flower port (the flower role's default).
FIRST_FLOWER_PORT = 5555


def name_error(name):
    """Why `name` cannot be an application's name ("" when it can)."""
    if not isinstance(name, str) or not NAME.match(name):
        return "must be 2 to 16 lower-case letters and digits, starting with a letter, got %r" % (
            name,
        )
    if name in RESERVED:
        return "%r is reserved (%s)" % (name, ", ".join(RESERVED))
    return ""


def names(name):
    """Everything namespaced by an application's name ("": the platform's first application)."""
    if not name:
        return {
            "service_prefix": _topology.SERVICE_PREFIX,
            "user": "celerystack",
            "home": "/opt/celerystack",
            "config_dir": "/etc/celerystack",
            "state_dir": "celerystack",
            "database": "celerystack",
            "db_user": "celerystack",
            "db_migration_user": "celerystack_migrate",
            "redis_prefix": "",
        }
    base = "celerystack-" + name
    return {
        "service_prefix": "%s-%s" % (_topology.SERVICE_PREFIX, name),
        "user": base,
        "home": "/opt/" + base,
        "config_dir": "/etc/" + base,
        "state_dir": base,
        "database": "celerystack_" + name,
        "db_user": "celerystack_" + name,
        "db_migration_user": "celerystack_%s_migrate" % name,
        "redis_prefix": name + ":",
    }


def _vhost(entry):
    topology = entry.get("topology") if isinstance(entry, dict) else None
    vhost = entry.get("broker_vhost") if isinstance(entry, dict) else None
    if vhost is None and isinstance(topology, dict):
        vhost = topology.get("vhost")
    return vhost or "/"


def errors(applications, first=None, name="celerystack_applications"):
    """Every problem of the entries, each naming its path; [] when they can be used.

    `first` describes the platform's first application, which the others must not collide
    with: {database, db_user, vhost, broker (rabbitmq|redis), flower_port}.
    """
    found = []
    first = first or {}
    if applications is None:
        return found
    if not isinstance(applications, list):
        return ["%s: must be a list of applications, got %r" % (name, type(applications).__name__)]
    seen = {
        "name": {},
        "database": {first.get("database", "celerystack"): "the first application"},
        "db_user": {},
        "vhost": {},
        "flower_port": {str(first.get("flower_port", FIRST_FLOWER_PORT)): "the first application"},
    }
    for user in (first.get("db_user"), first.get("db_migration_user")):
        if user:
            seen["db_user"][user] = "the first application"
    if first.get("broker", "rabbitmq") == "rabbitmq":
        seen["vhost"][first.get("vhost") or "/"] = "the first application"
    for index, entry in enumerate(applications):
        path = "%s[%d]" % (name, index)
        if not isinstance(entry, dict):
            found.append("%s: must be a mapping, got %r" % (path, entry))
            continue
        unknown = sorted(str(k) for k in entry if k not in KEYS)
        app = entry.get("name")
        if unknown:
            named = "%s (%s)" % (path, app) if isinstance(app, str) else path
            found.append("%s: unknown keys %s (known: %s)" % (named, unknown, ", ".join(KEYS)))
        problem = name_error(app)
        if problem:
            found.append("%s.name: %s" % (path, problem))
            continue
        path = "%s[%d] (%s)" % (name, index, app)
        _unique(found, seen["name"], app, path, ".name")
        for key in REQUIRED:
            if entry.get(key) in (None, "", {}, []):
                found.append("%s.%s: is required" % (path, key))
        derived = names(app)
        topology = entry.get("topology")
        if isinstance(topology, dict):
            defaults = entry.get("worker_defaults")
            for error in _topology.errors(
                topology,
                defaults if defaults is not None else _topology.WORKER_DEFAULTS,
                name=path + ".topology",
                defaults_name=path + ".worker_defaults",
            ):
                found.append(error)
            broker = topology.get("broker", "rabbitmq")
            if broker != first.get("broker", "rabbitmq"):
                found.append(
                    "%s.topology.broker: is %s, but the platform's broker is %s (every "
                    "application of a platform uses the same one)"
                    % (path, broker, first.get("broker", "rabbitmq"))
                )
            elif broker == "rabbitmq":
                _unique(
                    found, seen["vhost"], _vhost(entry), path, ".broker_vhost (or .topology.vhost)"
                )
        elif topology not in (None, "", {}, []):
            found.append("%s.topology: must be a mapping, got %r" % (path, topology))
        _unique(
            found, seen["database"], entry.get("db_name", derived["database"]), path, ".db_name"
        )
        for key, default in (("db_user", "db_user"), ("db_migration_user", "db_migration_user")):
            _unique(found, seen["db_user"], entry.get(key, derived[default]), path, "." + key)
        if "flower_port" in entry:
            port = _topology._integer(entry["flower_port"])
            if port is None or not 1024 <= port <= 65535:
                found.append(
                    "%s.flower_port: must be a port from 1024 to 65535, got %r"
                    % (path, entry["flower_port"])
                )
            else:
                _unique(found, seen["flower_port"], str(port), path, ".flower_port")
        else:
            found.append(
                "%s.flower_port: is required (each application's Flower listens on its own port; "
                "the first one's is %s)" % (path, first.get("flower_port", FIRST_FLOWER_PORT))
            )
        extra = entry.get("extra_secrets")
        if extra is not None and not (
            isinstance(extra, dict)
            and all(isinstance(k, str) and SECRET_NAME.match(k) for k in extra)
        ):
            found.append(
                "%s.extra_secrets: must map NAMES (upper-case letters, digits, _) to values" % path
            )
    return found


def _unique(found, seen, value, path, field):
    if value in seen:
        found.append(
            "%s%s: %r is also %s's (each application has its own)"
            % (path, field, value, seen[value])
        )
    else:
        seen[value] = path.split(" ")[-1].strip("()")


def role_vars(entry):
    """The role variables one application (an entry, checked) runs the roles with.

    Everything it names is its own: what the entry gives, else what its name derives. What it
    does not name (the stores' hosts, ports and CAs, email, Flower's logins, monit, log levels)
    is the platform's, as the inventory sets it for the first application.
    """
    app = entry["name"]
    derived = names(app)
    variables = {
        "celery_app_name": app,
        "celery_app_user": derived["user"],
        "celery_app_group": derived["user"],
        "celery_app_home": derived["home"],
        "celery_app_config_dir": derived["config_dir"],
        "celery_app_db_name": derived["database"],
        "celery_app_db_user": derived["db_user"],
        "celery_app_db_migration_user": derived["db_migration_user"],
        "celery_app_broker_vhost": _vhost(entry),
        "celery_app_broker_user": "celery-" + app,
        "celery_app_lock_user": "locks-" + app,
        "celery_app_result_backend": "",
        "celery_app_result_user": "results-" + app,
        "celery_app_result_password": "",
        "celery_app_result_expires": 86400,
        # Secrets have no default: an entry without one is named by the checks (REQUIRED).
        "celery_app_db_password": "",
        "celery_app_db_migration_password": "",
        "celery_app_broker_password": "",
        "celery_app_lock_password": "",
        "celery_app_secret_key": "",
        "celerystack_topology": {},
        "flower_port": None,
        "celery_app_secret_key_fallbacks": [],
        "celery_app_extra_environment": {},
        "celery_app_extra_secrets": {},
        # A file email sink is a directory of the application's own; SMTP (the platform's
        # celery_app_email_host) unless the entry names one.
        "celery_app_email_file_path": "",
        "celery_app_schedules": [],
        "celery_app_schedules_purge": True,
        "celery_app_migrate": True,
        "celery_worker_defaults": dict(_topology.WORKER_DEFAULTS),
        # Every workers host runs all of this application's queues.
        "celery_worker_queues": [],
        "celery_worker_overrides": {},
    }
    # The package, as the role runs it by default: the collection's reference application ("":
    # the role's own copy of it) unless the entry names its own.
    variables.update(
        {
            "celery_app_source": "",
            "celery_app_package": "celerystack-app",
            "celery_app_settings_module": "celerystack_app.settings",
            "celery_app_celery_module": "celerystack_app",
            "celery_app_manage_command": "celerystack-manage",
        }
    )
    for key in APP_KEYS:
        if key in entry:
            variables["celery_app_" + key] = entry[key]
    for key, variable in OTHER_VARIABLES.items():
        if key in entry:
            variables[variable] = entry[key]
    return variables


def monitored(applications):
    """What monit watches of each application other than the first: {name, service_prefix,
    topology, venv} (every workers host runs all of an application's queues)."""
    watched = []
    for entry in applications or []:
        derived = names(entry["name"])
        watched.append(
            {
                "name": entry["name"],
                "service_prefix": derived["service_prefix"],
                "topology": entry["topology"],
                "venv": derived["home"] + "/venv",
            }
        )
    return watched


def _resolved(entry):
    """An entry's names in its stores: what it gives, else what its name derives."""
    variables = role_vars(entry)
    return {
        key: variables["celery_app_" + key]
        for key in (
            "db_name",
            "db_user",
            "db_migration_user",
            "broker_vhost",
            "broker_user",
            "lock_user",
            "result_user",
            "result_backend",
        )
    }


def databases(applications):
    """The MariaDB role's other databases: one per application, with its two accounts."""
    found = []
    for entry in applications or []:
        names_ = _resolved(entry)
        found.append(
            {
                "name": names_["db_name"],
                "accounts": [
                    {
                        "user": names_["db_migration_user"],
                        "password": entry.get("db_migration_password"),
                        "previous": entry.get("db_migration_previous_passwords") or [],
                        "kind": "migration",
                    },
                    {
                        "user": names_["db_user"],
                        "password": entry.get("db_password"),
                        "previous": entry.get("db_previous_passwords") or [],
                        "kind": "runtime",
                    },
                ],
            }
        )
    return found


def redis_users(applications, broker="rabbitmq"):
    """The Redis role's ACL users of the other applications, each only in its own namespace."""
    found = []
    for entry in applications or []:
        names_ = _resolved(entry)
        prefix = names(entry["name"])["redis_prefix"]
        if broker == "redis":
            # kombu prefixes its keys with <name>:celery: (its global_keyprefix); the event lists
            # are the application's <name>:events:<queue>. Its pub/sub channels are prefixed too,
            # but kombu subscribes by pattern (PSUBSCRIBE), which Redis 7's ACL allows only for a
            # pattern granted literally: every channel, as for the first application's user.
            found.append(
                {
                    "name": names_["broker_user"],
                    "password": entry.get("broker_password"),
                    "previous_passwords": entry.get("broker_previous_passwords") or [],
                    "key_patterns": [prefix + "celery:*", prefix + "events:*"],
                    "channel_patterns": ["*"],
                    "commands": "+@all -@dangerous",
                }
            )
        found.append(
            {
                "name": names_["lock_user"],
                "password": entry.get("lock_password"),
                "previous_passwords": entry.get("lock_previous_passwords") or [],
                "key_patterns": [prefix + "lock:*"],
                "channel_patterns": [],
                "commands": "+@all -@dangerous",
            }
        )
        if names_["result_backend"] == "redis":
            found.append(
                {
                    "name": names_["result_user"],
                    "password": entry.get("result_password"),
                    "previous_passwords": entry.get("result_previous_passwords") or [],
                    "key_patterns": [prefix + "results:*"],
                    "channel_patterns": [prefix + "results:*"],
                    "commands": "+@all -@dangerous",
                }
            )
    return found


def rabbitmq(applications):
    """The RabbitMQ role's other topologies and users: each application's topology in its own
    vhost, and its broker user with every permission there and nowhere else."""
    topologies, users = [], []
    for entry in applications or []:
        topology = entry.get("topology") or {}
        if topology.get("broker", "rabbitmq") != "rabbitmq":
            continue
        names_ = _resolved(entry)
        topologies.append(dict(topology, vhost=names_["broker_vhost"]))
        users.append(
            {
                "name": names_["broker_user"],
                "password": entry.get("broker_password"),
                "tags": [],
                "permissions": [
                    {
                        "vhost": names_["broker_vhost"],
                        "configure": ".*",
                        "write": ".*",
                        "read": ".*",
                    }
                ],
            }
        )
    return {"topologies": topologies, "users": users}
