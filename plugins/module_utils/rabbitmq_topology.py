# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planning logic of the rabbitmq_topology module: no I/O, so it is unit-tested as tables.

The module reads the current objects of one vhost from the management API, and `plan()` turns
current and wanted state into an ordered list of changes, or refuses an incompatible one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

KINDS = ("exchange", "queue", "binding", "policy")

# Objects the broker owns: never planned for removal.
BUILTIN_EXCHANGE_PREFIX = "amq."
# Objects Celery's workers and clients declare themselves, never removed either: native delayed
# delivery's exchanges and queues (a worker declares them when one of its queues is a quorum
# queue; countdown and ETA tasks wait in them), events, remote control and its reply queues.
CELERY_OWNED = re.compile(
    r"^(celery_delayed_([0-9]+|delivery)|celeryev(\..*)?|(reply\.)?celery\.pidbox|.*\.celery\.pidbox"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)

EXCHANGE_DEFAULTS = {
    "type": "direct",
    "durable": True,
    "auto_delete": False,
    "internal": False,
    "arguments": {},
}
QUEUE_DEFAULTS = {"durable": True, "auto_delete": False, "arguments": {}}
BINDING_DEFAULTS = {"destination_type": "queue", "routing_key": "", "arguments": {}}
POLICY_DEFAULTS = {"apply_to": "all", "priority": 0, "definition": {}}


class TopologyError(Exception):
    """Wanted state that cannot be reached safely; the message names object and attribute."""


class IncompatibleChange(TopologyError):
    def __init__(self, kind, name, attribute, current, wanted):
        self.kind, self.name, self.attribute = kind, name, attribute
        self.current, self.wanted = current, wanted
        super(IncompatibleChange, self).__init__(
            "%s '%s': %s is %r on the broker but %r is wanted; RabbitMQ cannot change it in place. "
            "Set allow_recreate=true to delete and recreate it (a recreated queue loses its "
            "messages), or declare the current value." % (kind, name, attribute, current, wanted)
        )


def _with_defaults(spec, defaults):
    obj = copy.deepcopy(defaults)
    obj.update({k: copy.deepcopy(v) for k, v in spec.items() if v is not None})
    if "arguments" in obj:
        obj["arguments"] = dict(obj["arguments"] or {})
    return obj


def normalize_exchange(spec):
    obj = _with_defaults(spec, EXCHANGE_DEFAULTS)
    return {k: obj[k] for k in ("name", "type", "durable", "auto_delete", "internal", "arguments")}


def normalize_queue(spec):
    """A queue as compared: x-queue-type is always explicit (classic unless declared)."""
    obj = _with_defaults(spec, QUEUE_DEFAULTS)
    arguments = obj["arguments"]
    queue_type = arguments.get("x-queue-type") or obj.get("type") or "classic"
    arguments["x-queue-type"] = queue_type
    return {k: obj[k] for k in ("name", "durable", "auto_delete", "arguments")}


def normalize_binding(spec):
    obj = _with_defaults(spec, BINDING_DEFAULTS)
    return {
        k: obj[k] for k in ("source", "destination", "destination_type", "routing_key", "arguments")
    }


def normalize_policy(spec):
    obj = _with_defaults(spec, POLICY_DEFAULTS)
    # The API calls it apply-to; accept both spellings.
    if "apply-to" in spec:
        obj["apply_to"] = spec["apply-to"]
    return {k: obj[k] for k in ("name", "pattern", "apply_to", "priority", "definition")}


NORMALIZE = {
    "exchange": normalize_exchange,
    "queue": normalize_queue,
    "binding": normalize_binding,
    "policy": normalize_policy,
}


GROUPS = (
    ("exchange", "exchanges"),
    ("queue", "queues"),
    ("binding", "bindings"),
    ("policy", "policies"),
)


def declared(topology):
    """A topology entry {vhost, exchanges, ...} with only broker attributes, defaults filled in.

    Other keys (the worker settings a queue may carry) are dropped.
    """
    result = {"vhost": topology.get("vhost", "/")}
    for kind, group in GROUPS:
        result[group] = [NORMALIZE[kind](spec) for spec in topology.get(group) or []]
    return result


def binding_key(binding):
    """Bindings have no name: they are identified by everything they are."""
    return "%s -> %s %s [%s] %s" % (
        binding["source"],
        binding["destination_type"],
        binding["destination"],
        binding["routing_key"],
        _canonical(binding["arguments"]),
    )


def object_key(kind, obj):
    return binding_key(obj) if kind == "binding" else obj["name"]


def _canonical(value):
    if isinstance(value, dict):
        return "{" + ",".join("%s:%s" % (k, _canonical(value[k])) for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    return repr(value)


def differences(current, wanted):
    """[(attribute, current, wanted)] for every attribute that differs; arguments one by one."""
    found = []
    for attribute in sorted(wanted):
        if attribute == "arguments":
            cur_args, want_args = current.get("arguments") or {}, wanted["arguments"]
            for arg in sorted(set(cur_args) | set(want_args)):
                if cur_args.get(arg) != want_args.get(arg):
                    found.append(("arguments.%s" % arg, cur_args.get(arg), want_args.get(arg)))
        elif current.get(attribute) != wanted[attribute]:
            found.append((attribute, current.get(attribute), wanted[attribute]))
    return found


def _is_builtin(kind, obj):
    """The broker's own objects and Celery's (never planned for removal)."""
    if kind == "exchange":
        return (
            obj["name"] == ""
            or obj["name"].startswith(BUILTIN_EXCHANGE_PREFIX)
            or bool(CELERY_OWNED.match(obj["name"]))
        )
    if kind == "queue":
        return bool(CELERY_OWNED.match(obj["name"]))
    if kind == "binding":
        # The default exchange's implicit bindings, and those from or to Celery's objects.
        return (
            obj["source"] == ""
            or bool(CELERY_OWNED.match(obj["source"]))
            or bool(CELERY_OWNED.match(obj["destination"]))
        )
    return False


def _check_unique(kind, wanted):
    seen = set()
    for obj in wanted:
        key = object_key(kind, obj)
        if key in seen:
            raise TopologyError("%s '%s' is declared twice" % (kind, key))
        seen.add(key)


def plan(current, wanted, allow_recreate=False, remove_undeclared=False):
    """Return the ordered changes that turn `current` into `wanted`.

    current and wanted map each kind to a list of objects (wanted ones as declared, current ones
    as the API returns them). Each change is a dict: action (create, update, recreate, delete),
    kind, name, before, after. Order: exchanges, queues, bindings, policies are created or
    updated in that order; removals come last, in the reverse order.
    """
    creates, removals = [], []
    recreated = set()  # (kind, name): deleting them deleted their bindings too
    for kind in KINDS:
        normalize = NORMALIZE[kind]
        want = [normalize(o) for o in wanted.get(kind) or []]
        _check_unique(kind, want)
        have = {object_key(kind, o): o for o in (normalize(o) for o in current.get(kind) or [])}
        for obj in want:
            key = object_key(kind, obj)
            before = have.get(key)
            if kind == "binding" and _touches(obj, recreated):
                before = None
            if before is None:
                creates.append(make_change("create", kind, key, None, obj))
                continue
            diff = differences(before, obj)
            if not diff:
                continue
            if kind == "policy":
                creates.append(make_change("update", kind, key, before, obj))
            elif allow_recreate:
                creates.append(make_change("recreate", kind, key, before, obj))
                recreated.add((kind, key))
            else:
                attribute, cur, new = diff[0]
                raise IncompatibleChange(kind, key, attribute, cur, new)
        if remove_undeclared:
            wanted_keys = {object_key(kind, o) for o in want}
            for key, obj in sorted(have.items()):
                gone = kind == "binding" and _touches(obj, recreated)
                if key not in wanted_keys and not gone and not _is_builtin(kind, obj):
                    removals.append(make_change("delete", kind, key, obj, None))
    removals.sort(key=lambda change: -KINDS.index(change["kind"]))
    return creates + removals


def _touches(binding, recreated):
    """Whether a binding's source or destination is being deleted and recreated."""
    return ("exchange", binding["source"]) in recreated or (
        binding["destination_type"],
        binding["destination"],
    ) in recreated


def make_change(action, kind, name, before, after):
    return {"action": action, "kind": kind, "name": name, "before": before, "after": after}


def diff_of(changes):
    """Ansible diff: {before, after} keyed by kind, then object."""
    before, after = {}, {}
    for change in changes:
        group = change["kind"] + "s" if change["kind"] != "policy" else "policies"
        if change["before"] is not None:
            before.setdefault(group, {})[change["name"]] = change["before"]
        if change["after"] is not None:
            after.setdefault(group, {})[change["name"]] = change["after"]
    return {"before": before, "after": after}
