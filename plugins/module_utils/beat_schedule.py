# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Core of the beat_schedule module.

The module runs this file's source with the *application's* interpreter (`python -c`), where
Django and django-celery-beat are importable: `run_from_stdin()` reads the request as JSON, takes
a snapshot of the periodic tasks, plans, applies in one transaction unless in check mode, and
prints the changes as JSON. The planning half is pure (no Django import at module level) and is
unit-tested on the controller.

Upstream traps avoided on purpose:
- schedules are resolved by first match (`filter().first()`), never `get_or_create`, which fails
  once duplicates exist (django-celery-beat #322, #841), and schedule rows are never deleted
  (deleting one CASCADE-deletes every task using it);
- every write goes through `Model.save()` after `full_clean()`, so validation and the change
  signals run, and `PeriodicTasks.update_changed()` is called once at the end, so a running beat
  notices (bulk `update()` never reaches the scheduler: #248, #654, #768);
- only tasks carrying the marker are ever purged; tasks made in the admin are never touched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import sys
from datetime import datetime

MARKER = "[managed by celerystack.platform.beat_schedule]"
SCHEDULE_TYPES = ("interval", "crontab", "solar", "clocked")
INTERVAL_PERIODS = ("days", "hours", "minutes", "seconds", "microseconds")
CRONTAB_DEFAULTS = {
    "minute": "*",
    "hour": "*",
    "day_of_week": "*",
    "day_of_month": "*",
    "month_of_year": "*",
    "timezone": "UTC",
}
SOLAR_EVENTS = (
    "dawn_astronomical",
    "dawn_civil",
    "dawn_nautical",
    "dusk_astronomical",
    "dusk_civil",
    "dusk_nautical",
    "solar_noon",
    "sunrise",
    "sunset",
)
COMPARED = (
    "task",
    "schedule",
    "args",
    "kwargs",
    "queue",
    "routing_key",
    "priority",
    "expires",
    "one_off",
    "enabled",
    "description",
)


class ScheduleError(Exception):
    """A declared task that cannot be written; the message names the task and the field."""


def _iso(name, field, value):
    """An ISO 8601 time with its offset, written the way the snapshot writes it."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as err:
        raise ScheduleError(
            "task '%s': %s is not an ISO 8601 time: %s" % (name, field, value)
        ) from err
    if moment.tzinfo is None:
        raise ScheduleError("task '%s': %s needs a UTC offset (e.g. +00:00)" % (name, field))
    return moment.isoformat()


def _schedule(name, spec):
    kinds = [kind for kind in SCHEDULE_TYPES if spec.get(kind) is not None]
    if len(kinds) != 1:
        raise ScheduleError(
            "task '%s': declare exactly one of interval, crontab, solar, clocked (found %s)"
            % (name, ", ".join(kinds) or "none")
        )
    kind = kinds[0]
    values = dict(spec[kind])
    if kind == "interval":
        every, period = values.get("every"), values.get("period", "seconds")
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ScheduleError("task '%s': interval.every must be a positive integer" % name)
        if period not in INTERVAL_PERIODS:
            raise ScheduleError(
                "task '%s': interval.period must be one of %s, not '%s'"
                % (name, ", ".join(INTERVAL_PERIODS), period)
            )
        values = {"every": every, "period": period}
    elif kind == "crontab":
        unknown = set(values) - set(CRONTAB_DEFAULTS)
        if unknown:
            raise ScheduleError("task '%s': unknown crontab fields %s" % (name, sorted(unknown)))
        values = dict(CRONTAB_DEFAULTS, **{k: str(v) for k, v in values.items()})
    elif kind == "solar":
        if values.get("event") not in SOLAR_EVENTS:
            raise ScheduleError(
                "task '%s': solar.event must be one of %s" % (name, ", ".join(SOLAR_EVENTS))
            )
        values = {
            "event": values["event"],
            "latitude": "%.6f" % float(values["latitude"]),
            "longitude": "%.6f" % float(values["longitude"]),
        }
    else:
        if not values.get("clocked_time"):
            raise ScheduleError("task '%s': clocked.clocked_time is required" % name)
        values = {"clocked_time": _iso(name, "clocked.clocked_time", values["clocked_time"])}
    return {"type": kind, "values": values}


def normalize(spec):
    """A declared task as compared: every field explicit, the marker in the description."""
    name = spec["name"]
    if not spec.get("task"):
        raise ScheduleError("task '%s': 'task' (the Celery task name) is required" % name)
    schedule = _schedule(name, spec)
    one_off = bool(spec.get("one_off", False))
    if schedule["type"] == "clocked" and not one_off:
        raise ScheduleError("task '%s': a clocked schedule runs once; set one_off: true" % name)
    args = spec.get("args") or []
    kwargs = spec.get("kwargs") or {}
    if not isinstance(args, list):
        raise ScheduleError("task '%s': args must be a list" % name)
    if not isinstance(kwargs, dict):
        raise ScheduleError("task '%s': kwargs must be a mapping" % name)
    description = (spec.get("description") or "").strip()
    return {
        "name": name,
        "task": spec["task"],
        "schedule": schedule,
        "args": args,
        "kwargs": kwargs,
        "queue": spec.get("queue") or None,
        "routing_key": spec.get("routing_key") or None,
        "priority": spec.get("priority"),
        "expires": _iso(name, "expires", spec["expires"]) if spec.get("expires") else None,
        "one_off": one_off,
        "enabled": bool(spec.get("enabled", True)),
        "description": (description + "\n" if description else "") + MARKER,
    }


def is_managed(task):
    return MARKER in (task.get("description") or "")


def _view(task):
    return {k: copy.deepcopy(task[k]) for k in ("name", *COMPARED)}


def plan(current, wanted, purge_unmanaged=False):
    """Changes from current tasks (snapshot dicts) to the wanted ones (declared specs)."""
    wanted = [normalize(spec) for spec in wanted]
    names = [task["name"] for task in wanted]
    duplicates = sorted(set(n for n in names if names.count(n) > 1))
    if duplicates:
        raise ScheduleError("tasks declared more than once: %s" % ", ".join(duplicates))
    have = dict((task["name"], task) for task in current)
    changes = []
    for task in wanted:
        before = have.get(task["name"])
        if before is None:
            changes.append(
                {"action": "create", "name": task["name"], "before": None, "after": _view(task)}
            )
        elif any(before[k] != task[k] for k in COMPARED):
            changes.append(
                {
                    "action": "update",
                    "name": task["name"],
                    "before": _view(before),
                    "after": _view(task),
                }
            )
    if purge_unmanaged:
        for name in sorted(set(have) - set(names)):
            if is_managed(have[name]):
                changes.append(
                    {"action": "delete", "name": name, "before": _view(have[name]), "after": None}
                )
    return changes


def diff_of(changes):
    before = dict((c["name"], c["before"]) for c in changes if c["before"] is not None)
    after = dict((c["name"], c["after"]) for c in changes if c["after"] is not None)
    return {"before": before, "after": after}


# --- Runs inside the application's interpreter -------------------------------------------------


def _models():
    from django_celery_beat import models

    return models


def _snapshot_schedule(task):
    if task.interval_id:
        return {
            "type": "interval",
            "values": {"every": task.interval.every, "period": task.interval.period},
        }
    if task.crontab_id:
        cron = task.crontab
        return {
            "type": "crontab",
            "values": {
                "minute": cron.minute,
                "hour": cron.hour,
                "day_of_week": cron.day_of_week,
                "day_of_month": cron.day_of_month,
                "month_of_year": cron.month_of_year,
                "timezone": str(cron.timezone),
            },
        }
    if task.solar_id:
        solar = task.solar
        return {
            "type": "solar",
            "values": {
                "event": solar.event,
                "latitude": "%.6f" % float(solar.latitude),
                "longitude": "%.6f" % float(solar.longitude),
            },
        }
    return {"type": "clocked", "values": {"clocked_time": task.clocked.clocked_time.isoformat()}}


def snapshot():
    """Every periodic task as a plain dict in the shape normalize() returns."""
    tasks = []
    for task in (
        _models()
        .PeriodicTask.objects.select_related("interval", "crontab", "solar", "clocked")
        .order_by("name")
    ):
        tasks.append(
            {
                "name": task.name,
                "task": task.task,
                "schedule": _snapshot_schedule(task),
                "args": json.loads(task.args or "[]"),
                "kwargs": json.loads(task.kwargs or "{}"),
                "queue": task.queue or None,
                "routing_key": task.routing_key or None,
                "priority": task.priority,
                "expires": task.expires.isoformat() if task.expires else None,
                "one_off": task.one_off,
                "enabled": task.enabled,
                "description": task.description or "",
            }
        )
    return tasks


def _resolve_schedule(schedule):
    """The first schedule row with these values, created if there is none; never deleted."""
    models = _models()
    model = {
        "interval": models.IntervalSchedule,
        "crontab": models.CrontabSchedule,
        "solar": models.SolarSchedule,
        "clocked": models.ClockedSchedule,
    }[schedule["type"]]
    values = dict(schedule["values"])
    if schedule["type"] == "clocked":
        from django.utils.dateparse import parse_datetime

        values["clocked_time"] = parse_datetime(values["clocked_time"])
    row = model.objects.filter(**values).order_by("pk").first()
    if row is None:
        row = model(**values)
        row.full_clean()
        row.save()
    return row


def apply(changes):
    models = _models()
    for change in changes:
        if change["action"] == "delete":
            models.PeriodicTask.objects.get(name=change["name"]).delete()
            continue
        wanted = change["after"]
        task = models.PeriodicTask.objects.filter(name=wanted["name"]).first()
        if task is None:
            task = models.PeriodicTask(name=wanted["name"])
        for kind in SCHEDULE_TYPES:
            setattr(task, kind, None)
        setattr(task, wanted["schedule"]["type"], _resolve_schedule(wanted["schedule"]))
        task.task = wanted["task"]
        task.args = json.dumps(wanted["args"])
        task.kwargs = json.dumps(wanted["kwargs"], sort_keys=True)
        task.queue = wanted["queue"]
        task.routing_key = wanted["routing_key"]
        task.priority = wanted["priority"]
        task.expires = wanted["expires"]
        task.one_off = wanted["one_off"]
        task.enabled = wanted["enabled"]
        task.description = wanted["description"]
        task.full_clean()
        task.save()
    # One explicit signal for the scheduler, whatever the model signals did.
    models.PeriodicTasks.update_changed()


def run_from_stdin():
    request = json.load(sys.stdin)
    try:
        import django

        django.setup()
        from django.db import transaction

        with transaction.atomic():
            changes = plan(snapshot(), request["tasks"], request["purge_unmanaged"])
            if changes and not request["check_mode"]:
                apply(changes)
        result = {"changes": changes}
    except ScheduleError as err:
        result = {"error": str(err)}
    except Exception as err:
        result = {"error": "%s: %s" % (type(err).__name__, err)}
    sys.stdout.write(json.dumps(result, default=str))
