# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform's topology (`celerystack_topology`): checked once, resolved once.

Everything that reads the topology reads one of the projections computed here, so a rule such
as "a Celery queue has a direct exchange named like it" exists in one place:

- `errors()` checks every field and returns messages that name the field's path;
- `broker()` is what RabbitMQ declares (derived exchanges and bindings included);
- `application()` is what the Celery application routes by (the file the celery_app role
  writes; no worker settings, so tuning a worker never touches the application);
- `worker_services()` and `services()` are the service catalogue: unit names, PID and log
  files and `celery worker` options of workers, beat and Flower, for systemd units, monit and
  Flower's expected workers.

Pure Python with no Ansible import: the filters, the application's tests and the unit tests
load it as it is.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

try:
    from ansible_collections.celerystack.platform.plugins.module_utils import (
        rabbitmq_topology as _rabbitmq,
    )
except ImportError:  # pragma: no cover - the application's tests load this file on its own
    import importlib.util
    import os

    _spec = importlib.util.spec_from_file_location(
        "celerystack_rabbitmq_topology",
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "rabbitmq_topology.py"),
    )
    _rabbitmq = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_rabbitmq)

TOPOLOGY_KEYS = (
    "broker",
    "vhost",
    "default_queue",
    "queue_type",
    "delivery_limit",
    "queues",
    "exchanges",
    "bindings",
    "policies",
    "max_countdown",
    "visibility_timeout",
)
EXCHANGE_KEYS = ("name", "type", "durable", "auto_delete", "internal", "arguments")
BINDING_KEYS = ("source", "destination", "destination_type", "routing_key", "arguments")
POLICY_KEYS = ("name", "pattern", "apply_to", "apply-to", "priority", "definition")
WORKER_KEYS = (
    "enabled",
    "concurrency",
    "autoscale",
    "optimization",
    "max_tasks_per_child",
    "prefetch_multiplier",
    "soft_time_limit",
    "time_limit",
    "loglevel",
)
EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
QUEUE_TYPES = ("classic", "quorum")
# What RabbitMQ 3.10 (Debian 12's) accepts: classic_queues, quorum_queues and streams came with
# 3.12, and a policy naming one in the boot definitions stops the node from starting at all.
POLICY_APPLY_TO = ("all", "queues", "exchanges")
LOGLEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
OPTIMIZATIONS = ("fair", "default", "")

# Queue and exchange names become systemd unit names, file names and monit check names: keep
# them to characters that are safe in all three. `amq.` names belong to the broker.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
RESERVED_PREFIX = "amq."
# A raw queue's worker consumes a private Celery queue of this name (celery_app, events.py).
CONSUMER_SUFFIX = ".consumer"
DEFAULT_PREFETCH = 10

# Quorum Celery queues. RabbitMQ 3.x gives a quorum queue no delivery limit (a task that kills
# its worker comes back forever) and 4.x gives it 20: the platform sets one on purpose, by a
# policy (a queue argument could only change by deleting the queue), and dead-letters a task past
# it into one queue an operator reads, rather than dropping it.
DEFAULT_DELIVERY_LIMIT = 20
DEAD_LETTER_EXCHANGE = "celerystack.dlx"
DEAD_LETTER_QUEUE = "celerystack.dead"
QUORUM_POLICY = "celerystack-celery-quorum-queues"

# The broker the application's Celery messages go through.
BROKERS = ("rabbitmq", "redis")
# What only a RabbitMQ broker has: on Redis, kombu emulates queues with lists and sends a task to
# its queue by name, with nothing to declare or bind.
RABBITMQ_ONLY_KEYS = ("queue_type", "delivery_limit", "exchanges", "bindings", "policies")
RABBITMQ_ONLY_QUEUE_KEYS = (
    "type",
    "arguments",
    "durable",
    "auto_delete",
    "exchange",
    "routing_key",
    "prefetch",
)
QUEUE_KEYS = ("name", "raw", "routes", "worker", *RABBITMQ_ONLY_QUEUE_KEYS, "dead_letter")
# On Redis a raw queue is a list its producer (Logstash's redis output, data_type list) pushes
# events onto, under a prefix of its own: kombu keeps its queues under `celery:` (the broker
# user's other key pattern), so no event list can be mistaken for a Celery queue.
RAW_LIST_PREFIX = "events:"
# The longest countdown or ETA a task of the application is given (seconds), unless the topology
# says max_countdown: on Redis a message not acknowledged within the visibility timeout is given
# to another worker, and a worker holds a countdown task unacknowledged until it is due.
DEFAULT_MAX_COUNTDOWN = 3600

# Every worker's settings unless celery_worker_defaults says otherwise: the celery_worker role's
# defaults (a unit test keeps the two equal), for the derivations made where that role's
# variables are not in scope (the application's visibility timeout).
WORKER_DEFAULTS = {
    "concurrency": 2,
    "autoscale": "",
    "optimization": "fair",
    "max_tasks_per_child": 100,
    "prefetch_multiplier": 1,
    "soft_time_limit": 300,
    "time_limit": 360,
    "loglevel": "INFO",
}

# An application's services are named after its service prefix (applications.py: `celery` for
# the platform's first application): <prefix>-worker-<queue>, <prefix>-beat, <prefix>-flower,
# the target <prefix>.target, the logs in /var/log/<prefix>.
SERVICE_PREFIX = "celery"
RUN_DIR = "/run"
LOG_ROOT = "/var/log"


class TopologyInvalid(ValueError):
    """The topology (or the worker defaults) cannot be used; `errors` lists every problem."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(TopologyInvalid, self).__init__("; ".join(self.errors))


# --- checking ---------------------------------------------------------------------------------


def _integer(value):
    """An int from an int or a string of digits (Jinja renders numbers as text); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r"^-?[0-9]+$", value.strip()):
        return int(value)
    return None


def _boolean(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "false", "no"):
        return value.lower() in ("true", "yes")
    return None


class _Checker:
    def __init__(self, name):
        self.name = name
        self.found = []

    def error(self, path, message, value=None, show=True):
        text = "%s%s: %s" % (self.name, path, message)
        if show:
            text += ", got %r" % (value,)
        self.found.append(text)

    def mapping(self, path, value, keys):
        if not isinstance(value, dict):
            self.error(path, "must be a mapping", value)
            return False
        unknown = sorted(str(k) for k in value if k not in keys)
        if unknown:
            self.error(path, "unknown keys %s (known: %s)" % (unknown, ", ".join(keys)), show=False)
        return True

    def sequence(self, path, value):
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(path, "must be a list", value)
            return []
        return value

    def name_field(self, path, value, what):
        if not isinstance(value, str) or not NAME.match(value):
            self.error(
                path,
                "%s name must be 1 to 200 letters, digits or '_.:-', starting with a letter or "
                "digit" % what,
                value,
            )
            return False
        if value.startswith(RESERVED_PREFIX):
            self.error(path, "names starting with 'amq.' are reserved by RabbitMQ", value)
            return False
        return True

    def integer(self, path, value, low=None, high=None):
        number = _integer(value)
        bounds = ""
        if low is not None and high is not None:
            bounds = " from %d to %d" % (low, high)
        elif low is not None:
            bounds = " >= %d" % low
        if (
            number is None
            or (low is not None and number < low)
            or (high is not None and number > high)
        ):
            self.error(path, "must be an integer%s" % bounds, value)
            return None
        return number

    def boolean(self, path, value):
        if _boolean(value) is None:
            self.error(path, "must be true or false", value)

    def choice(self, path, value, choices):
        if value not in choices:
            self.error(path, "must be one of %s" % ", ".join(repr(c) for c in choices), value)
            return False
        return True

    def arguments(self, path, value):
        if value is not None and not isinstance(value, dict):
            self.error(path, "must be a mapping of x-arguments", value)


def errors(
    topology, worker_defaults=None, name="celerystack_topology", defaults_name=None, celery=True
):
    """Every problem of the topology, each naming its path; [] when it can be used.

    With `worker_defaults`, every queue's resolved worker settings are checked too (a bad
    default is reported once, under `defaults_name`). `celery=False` checks a topology that only
    a broker declares (another vhost of rabbitmq_topologies): it needs no default queue.
    """
    check = _Checker(name)
    if not check.mapping("", topology, TOPOLOGY_KEYS):
        return check.found
    redis = _broker(topology) == "redis"
    if "broker" in topology:
        check.choice(".broker", topology["broker"], BROKERS)
    if redis and not celery:
        check.error(
            ".broker",
            "is redis: RabbitMQ has nothing of this topology to declare (leave it out of "
            "rabbitmq_topologies)",
            topology["broker"],
        )
    if redis:
        for key in ("vhost", *RABBITMQ_ONLY_KEYS):
            if topology.get(key) not in (None, "", []):
                check.error(
                    "." + key,
                    "is RabbitMQ's: on a redis broker kombu keeps each Celery queue as a list "
                    "and sends a task to its queue by name, with no vhost, exchange, binding, "
                    "policy or queue type",
                    show=False,
                )
    else:
        vhost = topology.get("vhost")
        if not isinstance(vhost, str) or not vhost or not vhost.isprintable():
            check.error(".vhost", "must be a non-empty vhost name such as /celery", vhost)
        for key in ("max_countdown", "visibility_timeout"):
            if key in topology:
                check.error(
                    "." + key,
                    "is for a redis broker (broker: redis), whose visibility timeout it sets",
                    show=False,
                )
    if "max_countdown" in topology:
        check.integer(".max_countdown", topology["max_countdown"], 0, 30 * 86400)
    if "visibility_timeout" in topology:
        check.integer(".visibility_timeout", topology["visibility_timeout"], 1, 30 * 86400)
    queues = check.sequence(".queues", topology.get("queues"))
    if not queues:
        check.error(".queues", "must declare at least one queue", show=False)
    if "queue_type" in topology:
        check.choice(".queue_type", topology["queue_type"], QUEUE_TYPES)
    if "delivery_limit" in topology:
        check.integer(".delivery_limit", topology["delivery_limit"], 1, 1000000)
    exchanges = check.sequence(".exchanges", topology.get("exchanges"))
    bindings = check.sequence(".bindings", topology.get("bindings"))
    policies = check.sequence(".policies", topology.get("policies"))

    exchange_names = set()
    for index, spec in enumerate(exchanges):
        path = ".exchanges[%d]" % index
        if not check.mapping(path, spec, EXCHANGE_KEYS):
            continue
        if check.name_field(path + ".name", spec.get("name"), "an exchange") and _reserved(
            check, path + ".name", spec["name"]
        ):
            if spec["name"] in exchange_names:
                check.error(path + ".name", "exchange declared twice", spec["name"])
            exchange_names.add(spec["name"])
        if "type" in spec:
            check.choice(path + ".type", spec["type"], EXCHANGE_TYPES)
        for flag in ("durable", "auto_delete", "internal"):
            if flag in spec:
                check.boolean(path + "." + flag, spec[flag])
        check.arguments(path + ".arguments", spec.get("arguments"))

    queue_names, raw_names, units, routes = {}, set(), {}, {}
    for index, spec in enumerate(queues):
        path = ".queues[%d]" % index
        if not check.mapping(path, spec, QUEUE_KEYS):
            continue
        queue = spec.get("name")
        if check.name_field(path + ".name", queue, "a queue") and _reserved(
            check, path + ".name", queue
        ):
            if queue in queue_names:
                check.error(
                    path + ".name",
                    "queue declared twice (also queues[%d])" % queue_names[queue],
                    queue,
                )
            queue_names.setdefault(queue, index)
            unit = unit_name(queue)
            if unit in units and units[unit] != queue:
                check.error(
                    path + ".name",
                    "gives the same service name %s as queue %r" % (unit, units[unit]),
                    queue,
                )
            units.setdefault(unit, queue)
        raw = spec.get("raw", False)
        if "raw" in spec:
            check.boolean(path + ".raw", raw)
        raw = _boolean(raw) is True
        if raw and isinstance(queue, str):
            raw_names.add(queue)
        if "type" in spec:
            check.choice(path + ".type", spec["type"], QUEUE_TYPES)
        arguments = spec.get("arguments")
        check.arguments(path + ".arguments", arguments)
        if isinstance(arguments, dict) and "x-queue-type" in arguments:
            check.choice(path + ".arguments.x-queue-type", arguments["x-queue-type"], QUEUE_TYPES)
            if "type" in spec and spec["type"] != arguments["x-queue-type"]:
                check.error(
                    path + ".type",
                    "contradicts arguments.x-queue-type %r" % arguments["x-queue-type"],
                    spec["type"],
                )
        for flag in ("durable", "auto_delete"):
            if flag in spec:
                check.boolean(path + "." + flag, spec[flag])
        if _queue_type(spec, topology) == "quorum":
            # RabbitMQ refuses the declaration otherwise (a quorum queue is replicated on disk).
            if _boolean(spec.get("durable", True)) is False:
                check.error(path + ".durable", "a quorum queue is always durable", spec["durable"])
            if _boolean(spec.get("auto_delete", False)) is True:
                check.error(
                    path + ".auto_delete",
                    "a quorum queue cannot be auto-deleted",
                    spec["auto_delete"],
                )
        if redis:
            for key in RABBITMQ_ONLY_QUEUE_KEYS:
                if key in spec:
                    check.error(
                        path + "." + key,
                        "is RabbitMQ's: on a redis broker a Celery queue is a list that kombu "
                        "sends tasks to by name, and a raw queue is a list its producer pushes "
                        "events onto (the event consumer takes one at a time)",
                        show=False,
                    )
        if "dead_letter" in spec and not (redis and raw):
            check.error(
                path + ".dead_letter",
                "is for a raw queue on a redis broker (on RabbitMQ, malformed events go to "
                "arguments.x-dead-letter-exchange)",
                show=False,
            )
        if raw:
            for key in ("routes", "exchange", "routing_key"):
                if key in spec:
                    check.error(
                        path + "." + key,
                        "a raw queue carries events, not Celery tasks: declare its exchange and "
                        "binding explicitly, and route no task to it",
                        show=False,
                    )
            if "prefetch" in spec:
                check.integer(path + ".prefetch", spec["prefetch"], 1, 65535)
        else:
            if "prefetch" in spec:
                check.error(
                    path + ".prefetch",
                    "only raw queues have an event-consumer prefetch; a Celery queue's is "
                    "worker.prefetch_multiplier",
                    show=False,
                )
            if "exchange" in spec:
                check.name_field(path + ".exchange", spec["exchange"], "an exchange")
            if "routing_key" in spec and not isinstance(spec["routing_key"], str):
                check.error(path + ".routing_key", "must be a string", spec["routing_key"])
        for rindex, pattern in enumerate(check.sequence(path + ".routes", spec.get("routes"))):
            rpath = "%s.routes[%d]" % (path, rindex)
            if not isinstance(pattern, str) or not pattern.strip():
                check.error(rpath, "must be a task name or glob pattern", pattern)
            elif pattern in routes:
                check.error(
                    rpath, "task route also declared for queue %r" % routes[pattern], pattern
                )
            else:
                routes[pattern] = queue
        if "worker" in spec:
            _check_worker(check, path + ".worker", spec["worker"], worker_defaults)
    if worker_defaults is not None:
        _check_defaults(check, worker_defaults, defaults_name or "celery_worker_defaults")
    # Only with the worker settings it derives from (the worker and application roles' checks):
    # the platform-wide check has none, and would judge by the role's defaults.
    explicit = redis and "visibility_timeout" in topology
    if explicit and worker_defaults is not None and not check.found:
        needed = _needed_visibility_timeout(topology, worker_defaults)
        if _integer(topology["visibility_timeout"]) < needed:
            check.error(
                ".visibility_timeout",
                "must be at least %d s: the longest countdown (max_countdown) or the longest a "
                "prefetched task waits behind others, plus the longest time limit; a message "
                "unacknowledged for longer is given to a second worker and runs twice" % needed,
                topology["visibility_timeout"],
            )

    for queue in list(queue_names):
        if queue + CONSUMER_SUFFIX in queue_names and queue in raw_names:
            check.error(
                ".queues",
                "queue %r is the private consumer queue of raw queue %r; rename it"
                % (queue + CONSUMER_SUFFIX, queue),
                show=False,
            )

    for index, spec in enumerate(queues):
        target = spec.get("dead_letter") if isinstance(spec, dict) else None
        wrong = target not in raw_names or target == spec.get("name")
        if target is not None and redis and _is_raw(spec) and wrong:
            check.error(
                ".queues[%d].dead_letter" % index,
                "must name another raw queue of the topology (the list malformed events go "
                "to, each with the reason)",
                target,
            )

    default_queue = topology.get("default_queue", "default")
    if celery and queue_names and (default_queue not in queue_names or default_queue in raw_names):
        check.error(
            ".default_queue",
            "must name a Celery (not raw) queue of the topology (tasks without a route go there;"
            " 'default' when not set)",
            default_queue,
        )

    # Every Celery queue's own exchange exists, declared or derived: bindings may name it.
    derived = {}
    for spec in queues:
        if isinstance(spec, dict) and isinstance(spec.get("name"), str) and not _is_raw(spec):
            exchange = spec.get("exchange", spec["name"])
            if isinstance(exchange, str):
                derived.setdefault(exchange, spec["name"])
    all_exchanges = exchange_names | set(derived)
    delayed = _delayed_delivery(topology)
    for index, spec in enumerate(exchanges):
        explicit = isinstance(spec, dict) and spec.get("name") in derived
        kind = spec.get("type", "direct") if explicit else None
        if explicit and delayed and kind != "topic":
            # Celery publishes a countdown or ETA task into its delayed-delivery exchanges only
            # when the task's exchange is not direct (celery.app.base.send_task); otherwise the
            # worker holds it, which a quorum queue's per-consumer prefetch cannot make room for.
            check.error(
                ".exchanges[%d].type" % index,
                "exchange %r carries Celery queue %r of a topology with quorum Celery queues, "
                "and must be topic (countdown and ETA tasks wait in the broker through Celery's "
                "native delayed delivery, which skips direct exchanges)"
                % (spec["name"], derived[spec["name"]]),
                spec.get("type"),
            )
        elif explicit and kind not in ("direct", "topic"):
            check.error(
                ".exchanges[%d].type" % index,
                "exchange %r carries Celery queue %r and must be direct (or topic)"
                % (spec["name"], derived[spec["name"]]),
                spec.get("type"),
            )
    for index, spec in enumerate(bindings):
        path = ".bindings[%d]" % index
        if not check.mapping(path, spec, BINDING_KEYS):
            continue
        source = spec.get("source")
        if not isinstance(source, str) or not (
            source in all_exchanges or source.startswith(RESERVED_PREFIX)
        ):
            check.error(path + ".source", "must name an exchange of the topology", source)
        kind = spec.get("destination_type", "queue")
        check.choice(path + ".destination_type", kind, ("queue", "exchange"))
        destination = spec.get("destination")
        targets = queue_names if kind == "queue" else all_exchanges
        if destination not in targets:
            check.error(path + ".destination", "must name a %s of the topology" % kind, destination)
        if "routing_key" in spec and not isinstance(spec["routing_key"], str):
            check.error(path + ".routing_key", "must be a string", spec["routing_key"])
        check.arguments(path + ".arguments", spec.get("arguments"))

    policy_names = set()
    for index, spec in enumerate(policies):
        path = ".policies[%d]" % index
        if not check.mapping(path, spec, POLICY_KEYS):
            continue
        if not isinstance(spec.get("name"), str) or not spec.get("name"):
            check.error(path + ".name", "must be a non-empty string", spec.get("name"))
        elif spec["name"] in policy_names:
            check.error(path + ".name", "policy declared twice", spec["name"])
        else:
            policy_names.add(spec["name"])
        pattern = spec.get("pattern")
        try:
            re.compile(pattern if isinstance(pattern, str) else None)
        except (TypeError, re.error):
            check.error(path + ".pattern", "must be a regular expression", pattern)
        apply_to = spec.get("apply_to", spec.get("apply-to", "all"))
        check.choice(path + ".apply_to", apply_to, POLICY_APPLY_TO)
        if "priority" in spec:
            check.integer(path + ".priority", spec["priority"], 0)
        if not isinstance(spec.get("definition"), dict) or not spec.get("definition"):
            check.error(path + ".definition", "must be a non-empty mapping", spec.get("definition"))
        elif delayed and apply_to in ("all", "queues"):
            # RabbitMQ applies one policy to a queue, the one of highest priority: a policy of
            # the topology on a quorum Celery queue would silently undo its delivery limit.
            taken = [q for q in _quorum_celery_queues(topology) if _matches(pattern, q["name"])]
            if taken:
                check.error(
                    path + ".pattern",
                    "matches quorum Celery queue %r, whose delivery limit and dead-lettering are "
                    "the platform's policy %s (RabbitMQ applies one policy per queue); narrow the "
                    "pattern" % (taken[0]["name"], QUORUM_POLICY),
                    pattern,
                )
    return check.found


def _reserved(check, path, name):
    """Names the platform or Celery's workers declare themselves cannot be the topology's."""
    if name in (DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE) or _rabbitmq.CELERY_OWNED.match(name):
        check.error(path, "is a name the platform or Celery itself declares", name)
        return False
    return True


def _matches(pattern, name):
    try:
        return re.search(pattern, name) is not None
    except (TypeError, re.error):
        return False


def _check_worker(check, path, worker, defaults):
    if worker is None:
        return
    if not check.mapping(path, worker, WORKER_KEYS):
        return
    _check_settings(check, path, worker)
    # Without the defaults (the platform-wide check), a queue that sets both limits itself is
    # still compared: the pair is wrong whatever the defaults say.
    merged = _merge(defaults if isinstance(defaults, dict) else {}, worker)
    soft, hard = _integer(merged.get("soft_time_limit")), _integer(merged.get("time_limit"))
    if soft is not None and hard is not None and soft >= hard and soft > 0:
        where = "soft_time_limit" if "soft_time_limit" in worker else "time_limit"
        check.error(
            "%s.%s" % (path, where),
            "soft_time_limit (%d) must be below time_limit (%d)" % (soft, hard),
            show=False,
        )


def _check_defaults(check, defaults, name):
    sub = _Checker(name)
    if not isinstance(defaults, dict):
        sub.error("", "must be a mapping of worker settings", defaults)
    else:
        unknown = sorted(k for k in defaults if k not in WORKER_KEYS)
        if unknown:
            sub.error("", "unknown worker settings %s" % unknown, show=False)
        missing = sorted(
            k
            for k in (
                "concurrency",
                "max_tasks_per_child",
                "prefetch_multiplier",
                "soft_time_limit",
                "time_limit",
                "loglevel",
            )
            if k not in defaults
        )
        if missing:
            sub.error("", "misses %s" % missing, show=False)
        _check_settings(sub, "", defaults)
        soft, hard = _integer(defaults.get("soft_time_limit")), _integer(defaults.get("time_limit"))
        if soft is not None and hard is not None and soft >= hard:
            sub.error(".soft_time_limit", "must be below time_limit (%d)" % hard, soft)
    check.found.extend(sub.found)


def _check_settings(check, path, settings):
    if "enabled" in settings:
        check.boolean(path + ".enabled", settings["enabled"])
    if "concurrency" in settings:
        check.integer(path + ".concurrency", settings["concurrency"], 1, 1000)
    autoscale = settings.get("autoscale")
    if autoscale not in (None, ""):
        match = re.match(r"^\s*([0-9]+)\s*,\s*([0-9]+)\s*$", str(autoscale))
        if not isinstance(autoscale, str) or not match:
            check.error(path + ".autoscale", "must be 'max,min' (for example '8,2')", autoscale)
        else:
            high, low = int(match.group(1)), int(match.group(2))
            if not 1 <= low <= high <= 1000:
                check.error(
                    path + ".autoscale",
                    "'max,min' needs 1 <= min <= max <= 1000",
                    autoscale,
                )
    if "optimization" in settings:
        check.choice(path + ".optimization", settings["optimization"], OPTIMIZATIONS)
    if "max_tasks_per_child" in settings:
        check.integer(path + ".max_tasks_per_child", settings["max_tasks_per_child"], 1)
    if "prefetch_multiplier" in settings:
        check.integer(path + ".prefetch_multiplier", settings["prefetch_multiplier"], 1, 1000)
    for limit in ("soft_time_limit", "time_limit"):
        if limit in settings:
            check.integer("%s.%s" % (path, limit), settings[limit], 1, 7 * 86400)
    if "loglevel" in settings:
        level = settings["loglevel"]
        if not isinstance(level, str) or level.upper() not in LOGLEVELS:
            check.error(path + ".loglevel", "must be one of %s" % ", ".join(LOGLEVELS), level)


def check(topology, worker_defaults=None, celery=True):
    """Raise TopologyInvalid listing every problem."""
    found = errors(topology, worker_defaults, celery=celery)
    if found:
        raise TopologyInvalid(found)


# --- resolving --------------------------------------------------------------------------------


def _broker(topology):
    return topology.get("broker") or "rabbitmq"


def _needed_visibility_timeout(topology, defaults=None):
    """The shortest safe visibility timeout of a redis broker (seconds).

    A message stays unacknowledged while a worker holds it: a countdown or ETA task until it is
    due (max_countdown), a prefetched one behind `prefetch_multiplier` tasks of its process
    (each at most the hard time limit), then while it runs (acks_late: up to its time limit).
    Past the timeout kombu gives it to another worker, and the task runs twice.
    """
    defaults = WORKER_DEFAULTS if defaults is None else defaults
    waits, longest = [], 0
    for queue in topology.get("queues") or []:
        if isinstance(queue, dict) and _has_worker(queue):
            settings = _merge(defaults, queue.get("worker"))
            limit = _integer(settings.get("time_limit")) or 0
            waits.append((_integer(settings.get("prefetch_multiplier")) or 1) * limit)
            longest = max(longest, limit)
    countdown = _integer(topology.get("max_countdown", DEFAULT_MAX_COUNTDOWN))
    return max([countdown, *waits]) + longest


def visibility_timeout(topology, defaults=None):
    """A redis broker's visibility timeout: the topology's, else the shortest safe one (the
    same in every process of the application: kombu restores by the shortest it is given).
    None for RabbitMQ, which has none."""
    if _broker(topology) != "redis":
        return None
    if "visibility_timeout" in topology:
        return _integer(topology["visibility_timeout"])
    return _needed_visibility_timeout(topology, defaults)


def _merge(defaults, worker):
    settings = dict(defaults or {})
    settings.update(worker or {})
    return settings


def _is_raw(queue):
    return _boolean(queue.get("raw", False)) is True


def _celery_queues(topology):
    return [q for q in topology.get("queues") or [] if not _is_raw(q)]


def _raw_queues(topology):
    return [q for q in topology.get("queues") or [] if _is_raw(q)]


def _exchange_of(queue):
    """(exchange, routing key) of a Celery queue: Celery's own convention unless declared."""
    return queue.get("exchange", queue["name"]), queue.get("routing_key", queue["name"])


def _queue_type(queue, topology):
    """classic or quorum: the queue's own, else (Celery queues) the topology's queue_type."""
    arguments = queue.get("arguments") if isinstance(queue.get("arguments"), dict) else {}
    default = "classic" if _is_raw(queue) else topology.get("queue_type") or "classic"
    return arguments.get("x-queue-type") or queue.get("type") or default


def _queue_arguments(queue, topology):
    arguments = dict(queue.get("arguments") or {})
    arguments["x-queue-type"] = _queue_type(queue, topology)
    return arguments


def _quorum_celery_queues(topology):
    return [
        q
        for q in topology.get("queues") or []
        if isinstance(q, dict)
        and isinstance(q.get("name"), str)
        and not _is_raw(q)
        and _queue_type(q, topology) == "quorum"
    ]


def _delayed_delivery(topology):
    """Whether the application's workers run Celery's native delayed delivery: a Celery worker
    turns it on (and global QoS off) as soon as one of its queues is a quorum queue."""
    return bool(_quorum_celery_queues(topology))


def _celery_exchange_type(topology):
    return "topic" if _delayed_delivery(topology) else "direct"


def _has_worker(queue):
    """Celery queues get a worker unless turned off; raw queues only when they ask for one."""
    worker = queue.get("worker")
    if _is_raw(queue) and worker is None:
        return False
    return _boolean((worker or {}).get("enabled", True)) is not False


def broker(topology):
    """What the broker declares: explicit objects plus every Celery queue's exchange and binding.

    Objects come with rabbitmq_topology's defaults filled in; identical duplicates (an older
    topology that spelled out a derived exchange or binding) are declared once.
    """
    check(topology, celery=False)
    exchanges = [dict(e) for e in topology.get("exchanges") or []]
    names = {e["name"] for e in exchanges}
    bindings = [dict(b) for b in topology.get("bindings") or []]
    delayed = _delayed_delivery(topology)
    for queue in _celery_queues(topology):
        exchange, routing_key = _exchange_of(queue)
        if exchange not in names:
            exchanges.append({"name": exchange, "type": _celery_exchange_type(topology)})
            names.add(exchange)
        bindings.append(
            {"source": exchange, "destination": queue["name"], "routing_key": routing_key}
        )
        if delayed and not routing_key.startswith("#"):
            # The binding a delayed task arrives by (its key is the delay's bits, then the
            # queue's key): what each worker binds at start, declared here too, so that it is
            # the topology's own and is in the boot definitions after a wipe.
            bindings.append(
                {
                    "source": exchange,
                    "destination": queue["name"],
                    "routing_key": "#." + routing_key,
                }
            )
    queues = []
    for queue in topology.get("queues") or []:
        spec = {k: queue[k] for k in ("name", "durable", "auto_delete") if k in queue}
        spec["arguments"] = _queue_arguments(queue, topology)
        queues.append(spec)
    policies = copy.deepcopy(topology.get("policies") or [])
    if delayed:
        exchanges.append({"name": DEAD_LETTER_EXCHANGE, "type": "fanout"})
        queues.append({"name": DEAD_LETTER_QUEUE, "arguments": {"x-queue-type": "quorum"}})
        bindings.append({"source": DEAD_LETTER_EXCHANGE, "destination": DEAD_LETTER_QUEUE})
        policies.append(quorum_policy(topology))
    wanted = {
        "vhost": topology["vhost"],
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
        "policies": policies,
    }
    result = _rabbitmq.declared(wanted)
    seen, unique = set(), []
    for binding in result["bindings"]:
        key = repr(sorted(binding.items()))
        if key not in seen:
            seen.add(key)
            unique.append(binding)
    result["bindings"] = unique
    return result


def quorum_policy(topology):
    """The policy of the quorum Celery queues: a task redelivered more than `delivery_limit`
    times (each time its worker died or gave it back) is dead-lettered to celerystack.dead,
    at least once (kept until the dead-letter queue confirms it)."""
    names = sorted(q["name"] for q in _quorum_celery_queues(topology))
    return {
        "name": QUORUM_POLICY,
        "pattern": "^(?:%s)$" % "|".join(re.escape(name) for name in names),
        "apply_to": "queues",
        "priority": 0,
        "definition": {
            "delivery-limit": _integer(topology.get("delivery_limit", DEFAULT_DELIVERY_LIMIT)),
            "dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "dead-letter-strategy": "at-least-once",
            "overflow": "reject-publish",
        },
    }


def application(topology, defaults=None, key_prefix=""):
    """What the Celery application routes by (the celery_app role writes it as topology.json).

    No worker settings: the application, and so every service, is untouched by worker tuning;
    on a redis broker the visibility timeout they give (`defaults`: celery_worker_defaults) is
    in it, which every process must share. `key_prefix` is the application's Redis namespace
    (another application of the platform: `<name>:`), before its event lists' keys.
    """
    check(topology, defaults)
    redis = _broker(topology) == "redis"
    exchange_types = {e["name"]: e.get("type", "direct") for e in topology.get("exchanges") or []}
    queues = []
    for queue in _celery_queues(topology):
        exchange, routing_key = _exchange_of(queue)
        queues.append(
            {
                "name": queue["name"],
                "exchange": exchange,
                "exchange_type": exchange_types.get(exchange, _celery_exchange_type(topology)),
                "routing_key": routing_key,
                "durable": _boolean(queue.get("durable", True)) is not False,
                "arguments": {} if redis else _queue_arguments(queue, topology),
            }
        )
    raw = []
    for queue in _raw_queues(topology):
        arguments = queue.get("arguments") or {}
        spec = {
            "name": queue["name"],
            "consumer_queue": queue["name"] + CONSUMER_SUFFIX if _has_worker(queue) else None,
            # The consumer queue's own exchange, of the type every Celery queue's has.
            "consumer_exchange_type": _celery_exchange_type(topology),
            "dead_letter_exchange": arguments.get("x-dead-letter-exchange"),
            "prefetch": _integer(queue.get("prefetch", DEFAULT_PREFETCH)),
        }
        if redis:
            # The list the producer pushes events onto, and malformed events' list.
            dead_letter = queue.get("dead_letter")
            lists = key_prefix + RAW_LIST_PREFIX
            spec["list"] = lists + queue["name"]
            spec["dead_letter_list"] = lists + dead_letter if dead_letter else None
        raw.append(spec)
    routes = []
    for queue in _celery_queues(topology):
        for pattern in queue.get("routes") or []:
            routes.append({"pattern": pattern, "queue": queue["name"]})
    projection = {
        "vhost": topology.get("vhost") or "/",
        "default_queue": topology.get("default_queue", "default"),
        "queues": queues,
        "raw_queues": raw,
        "routes": routes,
    }
    if redis:
        # Only on Redis: a RabbitMQ platform's topology.json stays as it was, so an upgrade
        # restarts none of its services (the application takes a missing broker as rabbitmq).
        projection["broker"] = "redis"
        projection["visibility_timeout"] = visibility_timeout(topology, defaults)
    return projection


def unit_name(queue, prefix=SERVICE_PREFIX):
    return "%s-worker-%s" % (prefix, re.sub(r"[^A-Za-z0-9_-]", "-", queue))


def worker_options(settings):
    """The `celery worker` options of one service, in a stable order (settings are checked)."""
    options = []
    if settings.get("autoscale") not in (None, ""):
        high, low = (int(v) for v in str(settings["autoscale"]).split(","))
        options.append("--autoscale=%d,%d" % (high, low))
    else:
        options.append("--concurrency=%d" % _integer(settings["concurrency"]))
    if settings.get("optimization"):
        options.append("-O%s" % settings["optimization"])
    options.append("--max-tasks-per-child=%d" % _integer(settings["max_tasks_per_child"]))
    options.append("--prefetch-multiplier=%d" % _integer(settings["prefetch_multiplier"]))
    options.append("--soft-time-limit=%d" % _integer(settings["soft_time_limit"]))
    options.append("--time-limit=%d" % _integer(settings["time_limit"]))
    options.append("--loglevel=%s" % str(settings["loglevel"]).upper())
    # Mingle (a start-up exchange of revoked task ids with the other workers) can wait forever
    # when the others are restarting too, as after a broker restart or a rotated secret: seen in
    # the site scenario's rotation test, and celery/celery#1664, #4185. Nothing here revokes
    # tasks, so a worker starts without it.
    options.append("--without-mingle")
    return options


def worker_services(topology, defaults=None, only=None, prefix=SERVICE_PREFIX):
    """One service per queue that has a worker (on this host: `only` those queues, if given).

    Without `defaults`, only the names (unit, PID and log files) are given: what a watcher such
    as monit needs, without the settings the worker role owns.
    """
    check(topology, defaults)
    services = []
    for queue in topology.get("queues") or []:
        if not _has_worker(queue) or (only and queue["name"] not in only):
            continue
        raw = _is_raw(queue)
        unit = unit_name(queue["name"], prefix)
        service = {
            "kind": "worker",
            "queue": queue["name"],
            "unit": unit,
            "celery_queue": queue["name"] + CONSUMER_SUFFIX if raw else queue["name"],
            "raw_queue": queue["name"] if raw else None,
            "pidfile": "%s/%s/worker.pid" % (RUN_DIR, unit),
            "logfile": "%s/%s/%s.log" % (LOG_ROOT, prefix, unit),
        }
        if defaults is not None:
            settings = _merge(defaults, queue.get("worker"))
            settings.pop("enabled", None)
            service["settings"] = settings
            service["options"] = worker_options(settings)
            # A warm stop waits for running tasks, which the hard time limit bounds.
            service["stop_timeout"] = _integer(settings["time_limit"]) + 60
        services.append(service)
    return services


def services(
    topology,
    defaults=None,
    only=None,
    workers=True,
    beat=False,
    flower=False,
    prefix=SERVICE_PREFIX,
):
    """The service catalogue of one application on one host: its workers, beat and Flower, as
    systemd names them (`prefix`: the application's service prefix)."""
    catalogue = worker_services(topology, defaults, only, prefix) if workers else []
    if beat:
        unit = prefix + "-beat"
        catalogue.append(
            {"kind": "beat", "unit": unit, "pidfile": "%s/%s/beat.pid" % (RUN_DIR, unit)}
        )
    if flower:
        catalogue.append({"kind": "flower", "unit": prefix + "-flower", "pidfile": None})
    return catalogue
