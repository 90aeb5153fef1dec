# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The core of the ``units`` module: a set of systemd units enabled and running, in one call.

Reads every unit's state with one ``systemctl show``, works out which services started on an
older configuration generation than the current one (each service records the generation it
read when it started, see roles/celery_app's shared drop-in), and then enables, restarts and
starts what needs it with one ``systemctl`` call each: the units of a host restart side by side,
not one after another. Pure Python over an injected ``run``: tested on its own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

# States in which `systemctl enable` has nothing to do (or cannot do anything).
ENABLED_STATES = (
    "enabled",
    "enabled-runtime",
    "static",
    "alias",
    "indirect",
    "generated",
    "transient",
)
# A unit in one of these is running or on its way: start would change nothing.
RUNNING_STATES = ("active", "activating", "reloading")
PROPERTIES = ("Id", "LoadState", "ActiveState", "UnitFileState")


class UnitsError(Exception):
    """systemctl failed; the message says which command and why."""


def parse_show(output, names):
    """`systemctl show -p Id,LoadState,ActiveState,UnitFileState a b ...` -> {name: {prop: value}}.

    systemctl prints one block per unit, in the order asked, separated by blank lines.
    """
    blocks = output.strip().split("\n\n") if output.strip() else []
    if len(blocks) != len(names):
        raise UnitsError("systemctl show gave %d blocks for %d units" % (len(blocks), len(names)))
    states = {}
    for name, block in zip(names, blocks):  # noqa: B905 - lengths checked above; hosts may run Python < 3.10
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        states[name] = {key: props.get(key, "") for key in PROPERTIES}
    return states


def read_generation(path):
    """The first line of a generation record, or None when there is none."""
    try:
        with open(path) as handle:
            return handle.readline().strip() or None
    except (IOError, OSError):
        return None


def outdated(services, current, started_dir):
    """The services that started on another generation than `current` (none without one)."""
    if current is None:
        return []
    return [
        name for name in services if read_generation(os.path.join(started_dir, name)) != current
    ]


def plan(names, states, restart, stale):
    """What to do: {'enable': [...], 'restart': [...], 'start': [...], 'missing': [...]}.

    A unit systemd does not know (check mode on a new host, where this run would install it) is
    reported as missing and left alone. Restarted are the units asked for and the stale ones.
    """
    loaded = [name for name in names if states[name]["LoadState"] == "loaded"]
    missing = [name for name in names if name not in loaded]
    wanted_restart = set(restart) | set(stale)
    result = {
        "enable": [n for n in loaded if states[n]["UnitFileState"] not in ENABLED_STATES],
        "restart": [n for n in loaded if n in wanted_restart],
        "start": [
            n
            for n in loaded
            if n not in wanted_restart and states[n]["ActiveState"] not in RUNNING_STATES
        ],
        "missing": missing,
    }
    return result


def diff(states, actions):
    """before/after of each unit that changes: its enablement and whether it runs."""
    touched = [n for n in states if n in actions["enable"] + actions["restart"] + actions["start"]]
    before, after = {}, {}
    for name in touched:
        state = states[name]
        before[name] = {"enabled": state["UnitFileState"], "active": state["ActiveState"]}
        after[name] = {
            "enabled": "enabled" if name in actions["enable"] else state["UnitFileState"],
            "active": "restarted" if name in actions["restart"] else "active",
        }
    return {"before": before, "after": after}


def apply(actions, run):
    """Runs systemctl: enable, then restart, then start, each for all its units in one call."""
    for verb in ("enable", "restart", "start"):
        if actions[verb]:
            argv = ["systemctl", verb, *actions[verb]]
            rc, out, err = run(argv)
            if rc != 0:
                raise UnitsError(
                    "%s failed (%d): %s" % (" ".join(argv), rc, (err or out or "").strip()[-2000:])
                )
